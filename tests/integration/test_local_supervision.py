"""The local stack supervises: crashed children come back with backoff, children die with the
process that started them (even by SIGKILL), and `up`/`status`/`down` work from the data folder
alone. Real processes throughout; one `up` is shared by the stack tests of this module."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess, wait_until
from openv_localstack.servers import EmbeddedPostgres
from openv_localstack.state import RecordedProcess, StackState, process_start_time, read_state
from openv_localstack.supervisor import Supervisor

pytestmark = pytest.mark.integration

# The stack's start (and a Python service's) is slow on a loaded 2-core machine.
_UP_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- supervisor


def test_supervisor_restarts_with_doubling_delays_and_leaves_a_released_child_alone(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    crasher = ManagedProcess("crasher", ["sh", "-c", "exit 3"], None, tmp_path / "c.log")
    started: list[float] = []

    def restart() -> None:
        started.append(time.monotonic())
        crasher.start()

    crasher.start()
    supervisor = Supervisor(log=lines.append, base_delay=0.1, max_delay=0.4, stable_after=60)
    supervisor.watch("crasher", lambda: crasher, restart)
    supervisor.start()
    try:
        wait_until(lambda: supervisor.restarts("crasher") >= 4, 10, "four restarts")
        with supervisor.lock:
            supervisor.release("crasher")
            count = supervisor.restarts("crasher")
        time.sleep(1.0)
        assert supervisor.restarts("crasher") == count  # released: never restarted again
    finally:
        supervisor.stop()
        crasher.stop()
    gaps = [b - a for a, b in itertools.pairwise(started)]
    # 0.2, 0.4, 0.4 (capped) after the first 0.1, each plus up to a check interval (0.2 s).
    assert gaps[0] >= 0.2
    assert all(0.4 <= gap < 1.0 for gap in gaps[1:3])
    assert "crasher exited (code 3); restarting it in 0.1 s" in lines
    assert any(line.startswith("crasher restarted (restart #1, pid ") for line in lines)


def test_a_child_that_stays_up_starts_over_at_the_base_delay(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", ["sleep", "30"], None, tmp_path / "s.log")
    proc.start()
    # max_delay 1 s: above the 0.8 s the delay grows to (so it is not capped), and the
    # sleep below outlasts each delay (0.1, 0.2, 0.4 s).
    supervisor = Supervisor(log=lambda _: None, base_delay=0.1, max_delay=1, stable_after=0.3)
    supervisor.watch("sleeper", lambda: proc, proc.start)
    try:
        for _ in range(3):  # three quick crashes: the delay grows to 0.8 s
            proc.stop()
            supervisor.check()  # notes the crash
            time.sleep(supervisor.max_delay)
            supervisor.check()  # restarts
        assert supervisor.restarts("sleeper") == 3
        time.sleep(0.4)  # up longer than stable_after
        supervisor.check()
        proc.stop()
        supervisor.check()
        started = time.monotonic()

        def restarted() -> bool:
            supervisor.check()
            return proc.running

        wait_until(restarted, 5, "a restart")
        assert time.monotonic() - started < 0.5
    finally:
        proc.stop()


# --------------------------------------------------------------------------- parent death

_PARENT = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from openv_localstack.processes import ManagedProcess
    procs = []
    def start(user):
        proc = ManagedProcess("child", ["sleep", "300"], None, Path(sys.argv[1]), user=user)
        proc.start()
        procs.append(proc)
    # From short-lived threads: PR_SET_PDEATHSIG fires when the forking *thread* exits.
    for user in sys.argv[2:]:
        thread = threading.Thread(target=start, args=(user or None,))
        thread.start()
        thread.join()
    time.sleep(0.5)  # the threads are gone
    print(" ".join(str(proc.pid) for proc in procs), flush=True)
    time.sleep(300)
    """
)


def test_children_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    # As root the second child runs as postgres's user, as Postgres does: the setting must
    # survive that credential change.
    users = ["", "nobody"] if os.geteuid() == 0 else [""]
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path / "child.log"), *users],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == len(users)
        assert all(process_start_time(pid) is not None for pid in pids)  # outlived the thread
    finally:
        parent.kill()
        parent.wait()
    wait_until(lambda: all(process_start_time(pid) is None for pid in pids), 5, "children to die")


def test_a_recorded_pid_with_another_start_time_is_not_ours() -> None:
    me = process_start_time(os.getpid())
    assert me is not None
    assert RecordedProcess("me", os.getpid(), me).alive
    assert not RecordedProcess("reused", os.getpid(), me + 1).alive


# --------------------------------------------------------------------------- the CLI's stack


@dataclass
class Up:
    root: Path
    port: int
    process: subprocess.Popen[str]
    output: list[str]

    def state(self) -> StackState:
        state = read_state(self.root)
        assert state is not None
        return state


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openv_localstack", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _start_up(root: Path) -> Up:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "openv_localstack", "up", "--dir", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + _UP_TIMEOUT_S
    for line in process.stdout:
        output.append(line)
        if "OpenV is up" in line or time.monotonic() > deadline:
            break
    assert "OpenV is up" in "".join(output), "".join(output)
    os.set_blocking(process.stdout.fileno(), False)  # later reads: whatever has arrived
    return Up(root, port, process, output)


def _read_more(up: Up) -> str:
    assert up.process.stdout is not None
    up.output.append(up.process.stdout.read() or "")
    return "".join(up.output)


def _pids(state: StackState) -> list[RecordedProcess]:
    return [state.owner, *state.processes]


def _gone(procs: list[RecordedProcess], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if p.alive]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"{p.name} {p.pid}" for p in alive]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`up` in a folder whose Postgres an earlier, dead stack left running (an orphan)."""
    root = tmp_path_factory.mktemp("cli-stack")
    orphan = EmbeddedPostgres(root / "postgres", free_port())
    orphan.start()
    stack = None
    try:
        stack = _start_up(root)
        assert orphan.process is not None and orphan.process.returncode is not None
        yield stack
    finally:
        orphan.stop()
        if stack is not None and stack.process.poll() is None:
            stack.process.send_signal(signal.SIGINT)
            stack.process.wait(60)
        _cli("down", "--dir", str(root))


def test_up_stops_a_stale_postgres_of_its_folder_first(up: Up) -> None:
    assert "found a stale stack" in "".join(up.output)
    assert "stopping an orphan postgres" in "".join(up.output)


def test_status_reports_each_process(up: Up) -> None:
    result = _cli("status", "--dir", str(up.root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"gateway:       http://127.0.0.1:{up.port}" in result.stdout
    for proc in up.state().processes:
        assert f"{proc.name:<14} running  {proc.pid:>7}" in result.stdout
    assert result.stdout.count("healthy") >= 7  # 5 services, the simulator and S3
    assert result.stdout.count("accepts") == 2  # Postgres and the broker


def test_a_killed_service_is_restarted_without_restarting_the_stack(up: Up) -> None:
    before = {proc.name: proc for proc in up.state().processes}
    os.kill(before["gateway"].pid, signal.SIGKILL)
    wait_until(
        lambda: (
            httpx.get(f"http://127.0.0.1:{up.port}/healthz", timeout=1).status_code == 200
            and up.state().processes != tuple(before.values())
        ),
        60,
        "the gateway to answer again",
    )
    after = {proc.name: proc for proc in up.state().processes}
    assert after["gateway"].pid != before["gateway"].pid
    assert after["gateway"].restarts == 1
    assert all(after[name] == before[name] for name in after if name != "gateway")
    assert up.process.poll() is None
    assert "gateway exited (code -9); restarting it in 0.5 s" in _read_more(up)
    status = _cli("status", "--dir", str(up.root)).stdout
    assert f"gateway        running  {after['gateway'].pid:>7}        1  healthy" in status


def test_kill_9_of_up_leaves_nothing_running_and_the_folder_starts_again(up: Up) -> None:
    procs = _pids(up.state())
    up.process.kill()
    up.process.wait()
    assert _gone(procs, 5) == []
    assert _cli("status", "--dir", str(up.root)).returncode == 3
    again = _start_up(up.root)
    try:
        procs = _pids(again.state())
        result = _cli("down", "--dir", str(up.root))
        assert result.returncode == 0
        assert "stopped the stack" in result.stdout
        assert _gone(procs, 5) == []
        assert "no stack running" in _cli("status", "--dir", str(up.root)).stdout
    finally:
        if again.process.poll() is None:
            again.process.kill()
        again.process.wait()
