"""Transactional outbox from the log itself: publish stored events to Kafka in position order,
at least once, checkpointed in Postgres.

Appenders take the append lock first, so positions become visible in order and reading
"everything after the checkpoint" never skips a later-committing lower position. One relay
runs at a time (a session advisory lock elects it); the others wait as hot standbys.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters import metrics
from openv_jobs.adapters.event_store import EVENTS_CHANNEL, EventStore, RecordedEvent
from openv_jobs.adapters.projections import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

RELAY_CHECKPOINT: Final = "relay"
RELAY_LEADER_KEY: Final = 0x0E_5E_0002

#: Publish a batch in order; returns once the broker acknowledged all of it.
Publish = Callable[[list[RecordedEvent]], Awaitable[None]]


class Relay:
    def __init__(
        self,
        engine: AsyncEngine,
        dsn: str,
        publish: Publish,
        batch_size: int = 500,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.dsn = dsn
        self.publish = publish
        self.batch_size = batch_size
        self.idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled; survives database and broker outages by retrying."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay stopped by an error; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn)
        try:
            # Blocks until the current leader's session ends; then this instance takes over.
            await conn.execute("SELECT pg_advisory_lock($1)", RELAY_LEADER_KEY)
            await conn.add_listener(EVENTS_CHANNEL, lambda *_: self._wake.set())
            log.info("relay is leading")
            while True:
                moved = await self.relay_batch()
                if moved < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_poll_s)
                    self._wake.clear()
        finally:
            await conn.close()

    async def relay_batch(self) -> int:
        async with self.engine.connect() as conn:
            checkpoint = await load_checkpoint(conn, RELAY_CHECKPOINT)
            batch = await EventStore(conn).read_after(checkpoint, self.batch_size)
        if not batch:
            metrics.RELAY_LAG.set(0)
            return 0
        await self.publish(batch)
        async with self.engine.begin() as conn:
            await save_checkpoint(conn, RELAY_CHECKPOINT, batch[-1].position)
            head = await conn.scalar(sa.text("SELECT coalesce(max(position), 0) FROM events"))
        metrics.RELAY_LAG.set(max(0, int(head or 0) - batch[-1].position))
        return len(batch)
