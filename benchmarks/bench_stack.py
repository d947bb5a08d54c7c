"""The local stack and the bare hello-world as the gateway benchmarks run them: per-user
limits raised, span files off, the RunPod simulator keeping jobs queued (no MP4 rendering
competes for the CPU); and waiting until the stack is quiet before a measured run."""

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess, wait_until
from openv_localstack.stack import LocalStack, StackOptions

#: Every service's limits raised so that the load, not a per-user limit, is measured.
LIMITS_RAISED = {
    "OPENV_LOG_LEVEL": "WARNING",
    "OPENV_RATE_LIMIT_PER_S": "1000000",
    "OPENV_RATE_LIMIT_BURST": "1000000",
    "OPENV_MAX_ACTIVE_JOBS": "1000000",
    "OPENV_QUOTA_SECONDS": "1000000000",
    # The local stack writes every span to a file for its trace test: not something
    # production does, so off here (tracing itself stays on).
    "OPENV_TRACE_DIR": "",
}

HELLO_APP = """
from fastapi import FastAPI
import uvicorn, sys
app = FastAPI()

@app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def bench_stack(root: Path, env: dict[str, str] | None = None) -> LocalStack:
    """The stack (not started) with LIMITS_RAISED plus `env`, simulated jobs kept queued."""
    return LocalStack(
        StackOptions(
            root=root / "stack",
            service_env={**LIMITS_RAISED, **(env or {})},
            # Keep simulated jobs queued: no MP4 rendering competing for the CPU.
            sim_queue_s=3600.0,
        )
    )


@contextlib.contextmanager
def hello_world(root: Path) -> Iterator[str]:
    """A bare FastAPI hello-world (one uvicorn worker, no access log); yields its URL."""
    port = free_port()
    hello = ManagedProcess(
        "hello", [sys.executable, "-c", HELLO_APP, str(port)], dict(os.environ), root / "hello.log"
    )
    hello.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url, timeout=1).status_code == 200, 60, "hello", hello)
        yield url
    finally:
        hello.stop()


def process_cpu(process: psutil.Process) -> float:
    """CPU seconds of a process and its children (Postgres backends, uvicorn workers)."""
    total = 0.0
    try:
        children = process.children(recursive=True)
    except psutil.Error:  # gone meanwhile (e.g. a wrk that just exited)
        return total
    for one in [process, *children]:
        with contextlib.suppress(psutil.Error):
            times = one.cpu_times()
            total += times.user + times.system
    return total


def wait_until_quiet(max_s: float = 30.0, cores: float = 0.6) -> tuple[float, float]:
    """Wait until this script's child processes (the stack) use under `cores` of CPU over a
    second, so a run does not measure the backlog the previous one left (the bridge submits
    and the jobs service records after the last answer). Never quite idle: the bridge polls
    every job the simulator keeps queued once its 30 s without news are up, and the
    consumers a request waits on fetch every 10 ms. Returns (seconds waited, cores used)."""

    def busy(children: list[psutil.Process]) -> float:
        return sum(process_cpu(child) for child in children)

    started = time.monotonic()
    used = 0.0
    while time.monotonic() - started < max_s:
        children = psutil.Process().children(recursive=True)
        before = busy(children)
        time.sleep(1.0)
        used = busy(children) - before
        if used < cores:
            break
    return time.monotonic() - started, used
