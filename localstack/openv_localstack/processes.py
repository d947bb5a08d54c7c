"""Child processes owned by the local stack: started in their own process group, stopped by pid,
and killed by the kernel when the process that started them dies (even by SIGKILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_POLL_INTERVAL_S = 0.05
# Enough bytes for ~40 long log lines without reading a huge log file.
_TAIL_BYTES = 64 * 1024


_PR_SET_PDEATHSIG = 1
# Loaded once here: the child must not import or allocate much between fork and exec.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. Every
# child is therefore forked by this one thread, which lives as long as the interpreter, so a
# process started from a short-lived thread (a supervisor's restart, a test's worker) does not
# die with that thread.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openv-spawner")


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: SIGKILL this child when its parent dies.

    subprocess runs preexec_fn after setgroups/setregid/setreuid (CPython's child_exec), so a
    child started as another user keeps the setting (a credential change would clear it).
    """

    def preexec() -> None:
        if _prctl is None:
            return
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would kill us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn(**popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen on the spawner thread, with the parent-death signal set."""
    kwargs = {**popen_kwargs, "preexec_fn": _die_with_parent(os.getpid())}
    return _spawner.submit(lambda: subprocess.Popen(**kwargs)).result()


class ProcessExitedError(RuntimeError):
    """A managed process died while we were waiting for it to become ready."""


class ManagedProcess:
    """One server process, its log file, and a stop that cannot leave it behind.

    The child gets its own session (and so its own process group) so `stop()` can signal
    everything it spawned without touching the caller's group, and so a Ctrl+C in the
    developer's terminal is delivered by us in order rather than to every server at once.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None,
        log_path: Path,
        cwd: Path | None = None,
        *,
        stop_signal: signal.Signals = signal.SIGTERM,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.log_path = log_path
        self.cwd = cwd
        # Postgres needs SIGINT (fast shutdown): SIGTERM waits for every client to disconnect.
        self.stop_signal = stop_signal
        # Set only when running as root: Postgres refuses to run as root.
        self.user = user
        self._popen: subprocess.Popen[bytes] | None = None
        self._group_swept = True

    @property
    def pid(self) -> int | None:
        """Pid of the most recent start (kept after exit so callers can check it is gone)."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has exited (negative: killed by that signal)."""
        return self._popen.poll() if self._popen is not None else None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append, so a restart keeps the previous run's log for post-mortems.
        with self.log_path.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            log.write(f"--- {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = spawn(
                args=self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user,
                group=_primary_group(self.user),
                extra_groups=[] if self.user is not None else None,
            )
        self._group_swept = False

    def stop(self, timeout: float = 10.0) -> None:
        """Signal the group, wait up to `timeout`, then SIGKILL. Idempotent, never raises."""
        popen = self._popen
        if popen is None:
            return
        pgid = popen.pid  # start_new_session: the child leads its own group
        if popen.poll() is None:
            _signal_group(pgid, self.stop_signal)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                popen.wait()
        # Grandchildren that outlived the leader would keep ports open: kill what is left of
        # the group. Only once per start: later, the id could belong to an unrelated group.
        if not self._group_swept:
            self._group_swept = True
            _signal_group(pgid, signal.SIGKILL)

    def tail(self, n_lines: int = 40) -> str:
        """The last lines of the log, for error messages."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - _TAIL_BYTES))
                data = log.read()
        except FileNotFoundError:
            return ""
        lines = data.decode("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n_lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"ManagedProcess({self.name!r}, pid={self.pid}, {state})"


def _primary_group(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # ProcessLookupError: group already gone. PermissionError: the pid was reused by a
    # process we do not own, which is not ours to signal.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: ManagedProcess | None = None,
) -> None:
    """Poll `check` every 50 ms until it returns True.

    Raises ProcessExitedError at once if `proc` dies, TimeoutError after `timeout` seconds.
    An exception from `check` counts as "not yet" and is reported if the wait fails, so a
    check can simply try the real operation.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if proc is not None and not proc.running:
            raise ProcessExitedError(
                f"{proc.name} exited with code {proc.returncode} while waiting for {what}"
                f"{_last_error_text(last_error)}\n--- {proc.log_path} (tail) ---\n{proc.tail()}"
            )
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            log = f"\n--- {proc.log_path} (tail) ---\n{proc.tail()}" if proc is not None else ""
            raise TimeoutError(
                f"timed out after {timeout:.1f}s waiting for {what}{_last_error_text(last_error)}"
                f"{log}"
            )
        time.sleep(_POLL_INTERVAL_S)


def _last_error_text(error: BaseException | None) -> str:
    return "" if error is None else f" (last error: {type(error).__name__}: {error})"
