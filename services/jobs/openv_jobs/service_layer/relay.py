"""Transactional outbox from the log itself: publish stored events to Kafka in position order,
at least once, checkpointed in Postgres (a LogFollower: one leader, gap-free)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters import metrics
from openv_jobs.adapters.event_store import EventStore, RecordedEvent
from openv_jobs.adapters.projections import load_checkpoint, save_checkpoint
from openv_jobs.service_layer.follower import LogFollower

log = logging.getLogger(__name__)

RELAY_CHECKPOINT: Final = "relay"
RELAY_LEADER_KEY: Final = 0x0E_5E_0002

#: Publish a batch in order; returns once the broker acknowledged all of it.
Publish = Callable[[list[RecordedEvent]], Awaitable[None]]


class Relay(LogFollower):
    LEADER_KEY = RELAY_LEADER_KEY

    def __init__(
        self,
        engine: AsyncEngine,
        dsn: str,
        publish: Publish,
        batch_size: int = 500,
        idle_poll_s: float = 1.0,
    ) -> None:
        super().__init__(dsn, batch_size, idle_poll_s)
        self.engine = engine
        self.publish = publish

    async def step(self, conn: asyncpg.Connection) -> int:
        return await self.relay_batch()

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
