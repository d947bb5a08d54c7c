"""The stack's state file (`<data folder>/stack.json`) and what `up`, `status` and `down` do with
it: which processes of a folder's stack are still alive, and stopping them by pid.

A pid alone could have been reused by an unrelated process since it was recorded, so each pid
is stored with its start time (field 22 of /proc/<pid>/stat) and only a pid whose start time
still matches counts as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
_POLL_S = 0.1


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (the state) on; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    return stat[stat.rindex(")") + 2 :].split()


def is_zombie(pid: int) -> bool:
    """Dead, but not yet reaped by its parent (or by init, for an orphan)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def process_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot; None if it is gone or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class RecordedProcess:
    name: str
    pid: int
    start_time: int | None
    #: Sent to the process group to stop it (Postgres: SIGINT, a fast shutdown).
    stop_signal: int = signal.SIGTERM
    restarts: int = 0
    #: "http://..." (GET /healthz) or "tcp://host:port" (a connect), for `status`.
    health: str | None = None

    @property
    def alive(self) -> bool:
        return self.start_time is not None and process_start_time(self.pid) == self.start_time

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "stop_signal": int(self.stop_signal),
            "restarts": self.restarts,
            "health": self.health,
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> RecordedProcess:
        return cls(
            name,
            int(data["pid"]),
            data.get("start_time"),
            int(data.get("stop_signal", signal.SIGTERM)),
            int(data.get("restarts", 0)),
            data.get("health"),
        )


def record(name: str, pid: int, **kwargs: Any) -> RecordedProcess:
    return RecordedProcess(name, pid, process_start_time(pid), **kwargs)


@dataclass(frozen=True)
class StackState:
    #: The process that owns the stack (`up`, or a test session).
    owner: RecordedProcess
    processes: tuple[RecordedProcess, ...]
    gateway_url: str
    urls: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner.to_json(),
            "gateway_url": self.gateway_url,
            "urls": self.urls,
            "processes": {proc.name: proc.to_json() for proc in self.processes},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        return cls(
            RecordedProcess.from_json("owner", data["owner"]),
            tuple(RecordedProcess.from_json(n, p) for n, p in data["processes"].items()),
            data["gateway_url"],
            dict(data.get("urls", {})),
        )


def write_state(root: Path, state: StackState) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path = root / STATE_FILE
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.replace(path)


def read_state(root: Path) -> StackState | None:
    try:
        return StackState.from_json(json.loads((root / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"unreadable state file {root / STATE_FILE}: {exc}") from exc


def remove_state(root: Path) -> None:
    (root / STATE_FILE).unlink(missing_ok=True)


def _signal(proc: RecordedProcess, sig: int) -> None:
    """Signal the process group the stack gave it (its own session), checked to be ours."""
    if not proc.alive:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)


def wait_gone(procs: Iterable[RecordedProcess], timeout: float) -> list[RecordedProcess]:
    """Wait until none is alive; return those still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    left = [proc for proc in procs if proc.alive]
    while left and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        left = [proc for proc in left if proc.alive]
    return left


def stop_processes(
    procs: Iterable[RecordedProcess], log: Callable[[str], None], timeout: float = 10.0
) -> None:
    """Stop each (its stop signal, then SIGKILL after `timeout`), all at once, by pid."""
    alive = [proc for proc in procs if proc.alive]
    for proc in alive:
        log(f"stopping {proc.name} (pid {proc.pid})")
        _signal(proc, proc.stop_signal)
    for proc in wait_gone(alive, timeout):
        log(f"{proc.name} (pid {proc.pid}) did not stop in {timeout:g} s: SIGKILL")
        _signal(proc, signal.SIGKILL)
    wait_gone(alive, 5.0)


def orphan_postmaster(pgdata: Path) -> RecordedProcess | None:
    """The live postmaster that holds `pgdata`'s postmaster.pid, if any (a stale stack's)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError, ValueError, IndexError, ProcessLookupError):
        return None
    # Only a postgres serving this very cluster: the pid may have been reused meanwhile.
    if not cmdline[0].endswith(b"postgres") or os.fsencode(pgdata) not in cmdline:
        return None
    return record("postgres (postmaster.pid)", pid, stop_signal=signal.SIGINT)
