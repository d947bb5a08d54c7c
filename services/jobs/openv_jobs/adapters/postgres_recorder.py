"""The recorder on Postgres: the event log (`events`) and the `user_usage` projection, written
in one appending transaction on the connection the process holds (append_connection.py)."""

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters import projections
from openv_jobs.adapters.append_connection import AppendConnection
from openv_jobs.adapters.event_store import EventStore
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState
from openv_jobs.service_layer.recorder import NewEvent, RecordedEvent, RecorderTransaction


class PostgresTransaction:
    """An appending transaction: the append lock is taken when it begins."""

    def __init__(self, store: EventStore, pg: asyncpg.Connection) -> None:
        self.store = store
        self.pg = pg

    async def head(self) -> int:
        return await projections.log_head(self.pg)

    async def load_states(self, video_ids: Collection[UUID]) -> dict[UUID, VideoState]:
        return await projections.load_states(self.pg, video_ids)

    async def load_usages(self, user_ids: Collection[str]) -> dict[str, Usage]:
        return await projections.load_usages(self.pg, user_ids)

    async def append(self, events: Sequence[NewEvent], recorded_at: datetime) -> None:
        await self.store.write(events, recorded_at)

    async def numbered(
        self, written: Sequence[NewEvent], recorded_at: datetime
    ) -> list[RecordedEvent]:
        return await self.store.numbered(written, recorded_at)

    async def save_usages(self, usages: Sequence[Usage], position: int) -> None:
        await projections.save_usages(self.pg, list(usages), position)


class PostgresRecorder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.appends = AppendConnection(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RecorderTransaction]:
        async with self.appends.transaction() as store:
            yield PostgresTransaction(store, await store.lock_appends())

    async def close(self) -> None:
        """Release the appending connection (held between transactions)."""
        await self.appends.close()
