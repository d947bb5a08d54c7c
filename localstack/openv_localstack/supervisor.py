"""Restart what crashed, like compose's `restart: unless-stopped`.

A child is supervised while it is *wanted* (`watch`); `release` marks a deliberate stop, which is
never undone here. A crash is restarted after a delay that starts at `base_delay` and doubles per
consecutive crash up to `max_delay`; a child that stayed up `stable_after` seconds starts over at
`base_delay`. Every restart is logged and counted.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openv_localstack.processes import ManagedProcess

BASE_DELAY_S = 0.5
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 30.0
_CHECK_INTERVAL_S = 0.2


def _log_to_stderr(line: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"{stamp} {line}", file=sys.stderr, flush=True)


@dataclass
class _Child:
    process: Callable[[], ManagedProcess | None]
    restart: Callable[[], None]
    wanted: bool = True
    restarts: int = 0
    delay: float = BASE_DELAY_S
    #: When the next restart attempt is due (monotonic), once a crash was seen.
    due: float | None = None
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Watches children on a thread of its own; `lock` serialises restarts with deliberate
    stops and starts (hold it around those)."""

    def __init__(
        self,
        *,
        on_restart: Callable[[str], None] | None = None,
        log: Callable[[str], None] = _log_to_stderr,
        base_delay: float = BASE_DELAY_S,
        max_delay: float = MAX_DELAY_S,
        stable_after: float = STABLE_AFTER_S,
    ) -> None:
        self.lock = threading.RLock()
        self._children: dict[str, _Child] = {}
        self._on_restart = on_restart
        self._log = log
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(
        self, name: str, process: Callable[[], ManagedProcess | None], restart: Callable[[], None]
    ) -> None:
        """`name` should be running (it was just started): restart it if it exits."""
        with self.lock:
            child = self._children.get(name)
            restarts = child.restarts if child is not None else 0
            self._children[name] = _Child(
                process, restart, restarts=restarts, delay=self.base_delay
            )

    def release(self, name: str) -> None:
        """`name` is being stopped on purpose: leave it stopped."""
        with self.lock:
            child = self._children.get(name)
            if child is not None:
                child.wanted = False
                child.due = None

    def restarts(self, name: str) -> int:
        with self.lock:
            child = self._children.get(name)
            return child.restarts if child is not None else 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="openv-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising (before the children are stopped, so none is restarted)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(_CHECK_INTERVAL_S):
            self.check()

    def check(self) -> None:
        """One pass over the children: note crashes, restart those whose delay has passed."""
        restarted: list[str] = []
        with self.lock:
            for name, child in self._children.items():
                if self._stopping.is_set():
                    break
                if child.wanted and self._check_child(name, child):
                    restarted.append(name)
        if self._on_restart is not None:
            for name in restarted:
                self._on_restart(name)

    def _check_child(self, name: str, child: _Child) -> bool:
        now = time.monotonic()
        proc = child.process()
        if proc is not None and proc.running:
            if now - child.started_at >= self.stable_after:
                child.delay = self.base_delay
            return False
        if child.due is None:
            code = proc.returncode if proc is not None else None
            child.due = now + child.delay
            self._log(f"{name} exited (code {code}); restarting it in {child.delay:g} s")
            return False
        if now < child.due:
            return False
        child.restarts += 1
        child.due = None
        child.started_at = now
        child.delay = min(child.delay * 2, self.max_delay)
        try:
            child.restart()
        except Exception as exc:  # the next pass sees it down and waits the longer delay
            self._log(f"restart #{child.restarts} of {name} failed: {type(exc).__name__}: {exc}")
            return True
        proc = child.process()
        pid = proc.pid if proc is not None else None
        self._log(f"{name} restarted (restart #{child.restarts}, pid {pid})")
        return True
