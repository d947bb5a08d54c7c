"""The one start/stop sequence (openv_infra.lifecycle) and command-line parser (openv_infra.cli)
every service uses."""

import asyncio
from collections.abc import Mapping

import pytest
from fastapi import FastAPI

from openv_infra import cli
from openv_infra.lifecycle import lifespan
from openv_infra.settings import BaseServiceSettings


async def test_starts_in_order_runs_tasks_and_closes_every_step_even_after_a_failure() -> None:
    log: list[str] = []
    task_started = asyncio.Event()

    def step(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
        async def run() -> None:
            log.append(name)
            if fail:
                raise RuntimeError(name)

        return run

    async def background() -> None:
        task_started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("task cancelled")

    run = lifespan(
        start=[step("start a"), step("start b")],
        tasks={"bg": background},
        close=[step("close a", fail=True), step("close b")],
    )
    async with run(FastAPI()):
        await asyncio.wait_for(task_started.wait(), 1)
        assert log == ["start a", "start b"]
    assert log == ["start a", "start b", "task cancelled", "close a", "close b"]


async def test_a_failed_start_still_closes() -> None:
    closed: list[str] = []

    async def broken() -> None:
        raise ConnectionError("broker down")

    async def close() -> None:
        closed.append("closed")

    with pytest.raises(ConnectionError):
        async with lifespan(start=[broken], close=[close])(FastAPI()):
            pass
    assert closed == ["closed"]


def test_a_task_runs_with_its_flags_and_its_result_is_the_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Mapping[str, bool]] = []

    async def sweep(settings: BaseServiceSettings, flags: Mapping[str, bool]) -> int:
        seen.append(flags)
        return 3

    served: list[str] = []
    monkeypatch.setattr(cli, "run_service", lambda name, settings, app: served.append(name))
    tasks = {"sweep": cli.Task("sweep once", sweep, {"no-report": "do not report"})}

    def main(*argv: str) -> None:
        cli.service_main(
            "storage", BaseServiceSettings, lambda s: FastAPI(), tasks, package="x", argv=argv
        )

    with pytest.raises(SystemExit) as exited:
        main("sweep", "--no-report")
    assert exited.value.code == 3 and seen == [{"no-report": True}]
    with pytest.raises(SystemExit):
        main("sweep")
    assert seen[-1] == {"no-report": False}
    main()
    main("serve")
    assert served == ["storage", "storage"]
    with pytest.raises(SystemExit) as refused:
        main("rebuild")
    assert refused.value.code == 2
