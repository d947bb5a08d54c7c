"""Followers of the event log (the relay, the projector): one leader at a time, woken by the
appenders' NOTIFY, polling as a fallback.

Appenders take the append lock first, so positions become visible in order and reading
"everything after my checkpoint" never skips a later-committing lower position.
"""

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

import asyncpg

from openv_jobs.adapters.event_store import EVENTS_CHANNEL

log = logging.getLogger(__name__)


class LogFollower(ABC):
    #: Session advisory lock that elects the leader; the others wait as hot standbys.
    LEADER_KEY: int
    #: Events taken per step unless the constructor says otherwise.
    BATCH_SIZE: int = 500

    def __init__(
        self,
        dsn: str,
        batch_size: int | None = None,
        idle_poll_s: float = 1.0,
        min_interval_s: float = 0.0,
    ) -> None:
        self.dsn = dsn
        self.batch_size = batch_size or self.BATCH_SIZE
        self.idle_poll_s = idle_poll_s
        #: Pause after a step that moved something, so what arrives meanwhile makes one
        #: larger step (a step costs several round trips whatever its size).
        self.min_interval_s = min_interval_s
        self._wake = asyncio.Event()

    @abstractmethod
    async def step(self, conn: asyncpg.Connection) -> int:
        """Handle the next batch after the checkpoint; returns how many events it took."""

    async def run(self) -> None:
        """Run until cancelled; survives database and broker outages by retrying."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s stopped by an error; restarting in 1 s", type(self).__name__)
                await asyncio.sleep(1.0)

    async def catch_up(self) -> int:
        """Take every batch there is now (tests, benchmarks); returns how many events."""
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn)
        try:
            total = 0
            while moved := await self.step(conn):
                total += moved
            return total
        finally:
            await conn.close()

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn)
        try:
            # Blocks until the current leader's session ends; then this instance takes over.
            await conn.execute("SELECT pg_advisory_lock($1)", self.LEADER_KEY)
            await conn.add_listener(EVENTS_CHANNEL, lambda *_: self._wake.set())
            log.info("%s is leading", type(self).__name__)
            while True:
                moved = await self.step(conn)
                if moved and self.min_interval_s:
                    await asyncio.sleep(self.min_interval_s)
                if moved < self.batch_size:
                    # asyncio.timeout, not wait_for: 3.11's wait_for may swallow a cancel
                    # that lands as the event is set, and this loop would never stop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.idle_poll_s):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            await conn.close()
