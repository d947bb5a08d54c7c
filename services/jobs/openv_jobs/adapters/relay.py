"""Transactional outbox from the log itself: publish stored events to Kafka in position order,
at least once, checkpointed in Postgres (a LogFollower: one leader, gap-free)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg

from openv_jobs.adapters import metrics
from openv_jobs.adapters.event_store import save_and_read_after
from openv_jobs.adapters.follower import LogFollower
from openv_jobs.service_layer.recorder import RecordedEvent

log = logging.getLogger(__name__)

RELAY_CHECKPOINT: Final = "relay"
RELAY_LEADER_KEY: Final = 0x0E_5E_0002

#: Publish a batch in order; returns once the broker acknowledged all of it.
Publish = Callable[[list[RecordedEvent]], Awaitable[None]]


class Relay(LogFollower):
    LEADER_KEY = RELAY_LEADER_KEY

    def __init__(
        self, dsn: str, publish: Publish, batch_size: int | None = None, idle_poll_s: float = 1.0
    ) -> None:
        super().__init__(dsn, batch_size, idle_poll_s)
        self.publish = publish
        #: The connection this relay leads on, and what it published there so far (None:
        #: not known yet, the checkpoint says).
        self._conn: asyncpg.Connection | None = None
        self._published: int | None = None

    async def step(self, conn: asyncpg.Connection) -> int:
        # One round trip on the leader's own connection (a create waits for this step): save
        # what the previous step published, read what follows. So the checkpoint trails the
        # broker by one step; a new leader may publish that step again, which every consumer
        # tolerates (at least once, as after any crash between publish and save).
        if conn is not self._conn:
            self._conn, self._published = conn, None
        batch, head = await save_and_read_after(
            conn, RELAY_CHECKPOINT, self._published, self.batch_size
        )
        if not batch:
            metrics.RELAY_LAG.set(0)
            return 0
        await self.publish(batch)
        self._published = batch[-1].position
        metrics.RELAY_LAG.set(max(0, head - batch[-1].position))
        return len(batch)
