"""The simulator's RunPod limits over real sockets: per route, counted per fixed window and in
flight, answered with 429 and no Retry-After (as RunPod does); set at start from the
environment and at run time through the admin API; and its key can be rotated at run time."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from openv_localstack.ports import free_port
from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.limits import Limits
from tests.integration.support import serve

pytestmark = pytest.mark.integration

API_KEY = "limits-key"
RUN = "/v2/ep/run"
BODY: dict[str, Any] = {"input": {"positive_prompt": "a fox", "sim": {"hang": True}}}


@asynccontextmanager
async def simulator(settings: SimSettings) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    async with (
        serve(create_app(settings), port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        ) as client,
    ):
        yield client


async def window_start(window_s: float) -> None:
    """Sleep until a fresh fixed window has just begun (RunPod's windows are fixed)."""
    await asyncio.sleep(window_s - time.monotonic() % window_s + 0.02)


async def test_limits_from_the_environment_refuse_with_429_and_no_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNPOD_SIM_LIMITS", '{"run_per_window": 3, "window_s": 1.5}')
    settings = SimSettings(api_key=API_KEY, log_level="warning")
    assert settings.rate_limits().run_per_window == 3
    async with simulator(settings) as sim:
        await window_start(1.5)
        answers = [await sim.post(RUN, json=BODY) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        assert all("retry-after" not in a.headers for a in answers)
        assert answers[3].json() == {"error": "Too many requests: rate limit exceeded"}
        # Another route and another endpoint count on their own.
        job_id = answers[0].json()["id"]
        assert (await sim.get(f"/v2/ep/status/{job_id}")).status_code == 200
        assert (await sim.post("/v2/other/run", json=BODY)).status_code == 200
        # A retry in the same window fails again; the next window lets it through.
        assert (await sim.post(RUN, json=BODY)).status_code == 429
        await window_start(1.5)
        assert (await sim.post(RUN, json=BODY)).status_code == 200
        view = (await sim.get("/admin/limits")).json()
        assert view["throttled"] == {"run": 3}
        admin = (await sim.get("/admin/jobs")).json()
        assert admin["runs_accepted"] == 5  # refused calls created no job


async def test_runpods_documented_limits_switch_on_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNPOD_SIM_RUNPOD_LIMITS", "true")
    monkeypatch.setenv("RUNPOD_SIM_LIMITS", '{"status_per_window": 5}')
    limits = SimSettings().rate_limits()
    assert limits == Limits.runpod().model_copy(update={"status_per_window": 5})
    assert (limits.run_per_window, limits.run_concurrent) == (1000, 200)
    assert (limits.cancel_per_window, limits.cancel_concurrent) == (100, 20)
    assert SimSettings(runpod_limits=False).rate_limits() == Limits(status_per_window=5)


async def test_concurrency_limits_and_limits_changed_at_run_time() -> None:
    async with simulator(SimSettings(api_key=API_KEY, log_level="warning")) as sim:
        # Unlimited by default.
        assert all(
            a.status_code == 200 for a in [await sim.post(RUN, json=BODY) for _ in range(30)]
        )
        changed = await sim.post("/admin/limits", json={"limits": {"run_concurrent": 2}})
        assert changed.status_code == 200
        assert changed.json()["limits"]["run_concurrent"] == 2
        await sim.post("/admin/faults", json={"hang_run_s": 0.5})  # each /run takes 0.5 s
        answers = await asyncio.gather(*(sim.post(RUN, json=BODY) for _ in range(3)))
        assert sorted(a.status_code for a in answers) == [200, 200, 429]
        await sim.post("/admin/faults", json={"hang_run_s": 0})
        # Once they answered, their slots are free again.
        assert (await sim.post(RUN, json=BODY)).status_code == 200

        runpod = (await sim.post("/admin/limits", json={"runpod": True})).json()["limits"]
        assert runpod == Limits.runpod().model_dump()
        off = (await sim.post("/admin/limits", json={"off": True})).json()["limits"]
        assert off == Limits().model_dump()
        bad = await sim.post("/admin/limits", json={"limits": {"run_per_window": 0}})
        assert bad.status_code == 422
        unknown = await sim.post("/admin/limits", json={"limits": {"gpu_per_window": 3}})
        assert unknown.status_code == 422


async def test_the_api_key_can_be_rotated_at_run_time_and_reset_restores_it() -> None:
    async with simulator(SimSettings(api_key=API_KEY, log_level="warning")) as sim:
        assert (await sim.get("/v2/ep/health")).status_code == 200
        assert (await sim.post("/admin/api-key", json={"api_key": "rotated"})).status_code == 200
        refused = await sim.get("/v2/ep/health")
        assert refused.status_code == 401
        rotated = {"Authorization": "Bearer rotated"}
        assert (await sim.get("/v2/ep/health", headers=rotated)).status_code == 200
        assert (await sim.post("/admin/api-key", json={"api_key": ""})).status_code == 422
        await sim.post("/admin/limits", json={"limits": {"run_per_window": 1}})
        await sim.post("/admin/reset")
        assert (await sim.get("/v2/ep/health")).status_code == 200
        assert (await sim.get("/admin/limits")).json()["limits"] == Limits().model_dump()
