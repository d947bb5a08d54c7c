"""The stack's children besides the servers: the five services, their migrations and the RunPod
simulator. How each is launched (`python -m <module>`, its log under `logs/`) and when it counts
as up; the stack (stack.py) decides their environment and order."""

import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from openv_localstack.processes import ManagedProcess, wait_until

#: Each service's package, run as `python -m <package>`.
MODULES = {
    "jobs": "openv_jobs",
    "runpod-bridge": "openv_bridge",
    "storage": "openv_storage",
    "webhooks": "openv_webhooks",
    "gateway": "openv_gateway",
}
#: The services with a database, migrated before any service starts.
MIGRATED = ("jobs", "runpod-bridge", "webhooks")


def service_process(service: str, env: Mapping[str, str], logs: Path) -> ManagedProcess:
    """`service` (not started yet), logging to `logs/<service>.log`."""
    argv = [sys.executable, "-m", MODULES[service]]
    return ManagedProcess(service, argv, dict(env), logs / f"{service}.log")


def simulator_process(env: Mapping[str, str], logs: Path) -> ManagedProcess:
    """The RunPod simulator (not started yet), logging to `logs/runpod-sim.log`."""
    argv = [sys.executable, "-m", "openv_runpod_sim"]
    return ManagedProcess("runpod-sim", argv, dict(env), logs / "runpod-sim.log")


def run_migrations(envs: Mapping[str, Mapping[str, str]], logs: Path) -> None:
    """`python -m <service> migrate` for each service of `envs` (its environment), side by
    side; raises with the log's tail if any fails."""
    procs = [
        ManagedProcess(
            f"{service}-migrate",
            [sys.executable, "-m", MODULES[service], "migrate"],
            dict(env),
            logs / f"{service}-migrate.log",
        )
        for service, env in envs.items()
    ]
    try:
        for proc in procs:
            proc.start()
        wait_until(lambda: not any(proc.running for proc in procs), 60, "migrations")
        for proc in procs:
            if proc.returncode != 0:
                raise RuntimeError(f"{proc.name} failed:\n{proc.tail()}")
    finally:
        for proc in procs:
            proc.stop()


def wait_healthy(name: str, base_url: str, process: ManagedProcess) -> None:
    """Wait until `base_url/healthz` answers 200 (raises if `process` exits first)."""
    _wait_for_ok(f"{base_url}/healthz", 1.0, f"{name} at {base_url}", process)


def wait_ready(service: str, base_url: str, admin_url: str, process: ManagedProcess) -> None:
    """Alive on its port, then ready (its dependencies answer) on its admin port."""
    wait_healthy(service, base_url, process)
    url = f"{admin_url}/readyz"
    _wait_for_ok(url, 3.0, f"{service} ready at {url}", process)


def _wait_for_ok(url: str, timeout: float, what: str, process: ManagedProcess) -> None:
    # wait_until takes a failed request for "not yet" (and reports the last one). One client
    # for every poll: a new one per poll (httpx.get) costs ~40 ms of CPU, taken every 50 ms
    # from the services starting beside it.
    with httpx.Client(timeout=timeout) as client:
        wait_until(lambda: client.get(url).status_code == 200, 60, what, process)
