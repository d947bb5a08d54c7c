"""The connection the decision path's appending transactions run on: one, held between batches.

Appends are serialized by the append lock anyway, so one process needs one connection for
them. Checking a pooled connection out for every batch cost three round trips of pre-ping
(SQLAlchemy's asyncpg ping is BEGIN, `;`, ROLLBACK) and SQLAlchemy's begin and commit layers:
about a tenth of the decision path per event. Held, a batch costs one round trip to begin and
take the lock, and one to commit.

What pre-ping protected against, a connection the server or the network dropped while it sat
idle, is handled where it shows: if the opening round trip fails, the connection is replaced
and the transaction begun once more (nothing was sent in it yet). A failure later in a
transaction rolls it back; a connection that cannot even roll back is replaced next time.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openv_infra.db import driver_connection
from openv_jobs.adapters.event_store import APPEND_LOCK_KEY, EventStore

log = logging.getLogger(__name__)

# Simple-query protocol: both statements in one round trip, each with its own snapshot, so
# whatever the transaction reads next is read after the lock was granted.
_BEGIN_AND_LOCK: Final = f"BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"


class AppendConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._pg: asyncpg.Connection | None = None
        # One transaction at a time on the connection (the process's appends queue here
        # instead of on the lock, each holding a connection of its own).
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[EventStore]:
        """An appending transaction, the append lock taken; commits when the block ends,
        rolls back if it raises."""
        async with self._turn:
            conn, pg = await self._begin()
            try:
                yield EventStore(conn, locked=pg)
            except BaseException:
                await self._rollback(pg)
                raise
            try:
                await pg.execute("COMMIT")
            except BaseException:
                await self._drop()  # the connection's state is unknown now
                raise

    async def close(self) -> None:
        async with self._turn:
            await self._drop()

    async def _begin(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        for attempt in (1, 2):
            if self._conn is None or self._pg is None or self._pg.is_closed():
                await self._drop()
                self._conn = await self.engine.connect()
                self._pg = await driver_connection(self._conn)
            try:
                await self._pg.execute(_BEGIN_AND_LOCK)
                return self._conn, self._pg
            except Exception as exc:
                # Nothing was sent in the transaction yet, so whatever went wrong was the
                # connection's (dropped while idle: server restart, network, terminated).
                # asyncpg reports that in several ways, an internal client error among them.
                log.warning("appending connection unusable (%r), reconnecting", exc)
                await self._drop()
                if attempt == 2:
                    raise
            except BaseException:  # e.g. cancelled while waiting for the lock
                await self._drop()
                raise
        raise AssertionError("unreachable")

    async def _rollback(self, pg: asyncpg.Connection) -> None:
        try:
            if not pg.is_closed():
                await pg.execute("ROLLBACK")
                return
        except Exception as exc:  # the connection is unusable: the next transaction replaces it
            log.warning("appending connection could not roll back (%s)", exc)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn, self._pg = self._conn, None, None
        if conn is None:
            return
        try:
            await conn.invalidate()  # never back into the pool: its state is unknown
        except Exception as exc:
            log.debug("closing a lost appending connection: %s", exc)
        await conn.close()
