"""The event store on Postgres. Operations take an open connection so that a caller composes
appends and projection updates into one transaction.

Reads go through SQLAlchemy; the write path (one appending transaction per consumer batch)
talks to the same connection's asyncpg driver directly, which skips SQLAlchemy's per-statement
and per-row work where it is paid once per event.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import pydantic_core
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.tables import StoredEvent
from openv_shared.contracts import Envelope
from openv_shared.db import driver_connection

#: Advisory lock taken first by every appending transaction: positions are then assigned in
#: commit order, so a reader that saw position N can never later find a smaller new one.
APPEND_LOCK_KEY: Final = 0x0E_5E_0001
#: Channel the relay listens on; appenders notify it after a commit.
EVENTS_CHANNEL: Final = "openv_events"

_events = StoredEvent.__table__  # type: ignore[attr-defined]


# One statement per chunk whatever its size, compiled once: the chunk travels as one JSON array
# of envelopes (serialized in pydantic-core, parsed by Postgres; encoding eight parameter
# arrays element by element cost more than the insert). The statement takes the chunk's
# positions from the identity sequence in one step (the append lock keeps everyone else off
# it) and numbers the rows in their order, so nothing needs to come back but the first one.
_APPEND = """
    WITH reserved AS (
        SELECT setval(pg_get_serial_sequence('events', 'position'),
                      nextval(pg_get_serial_sequence('events', 'position')) + $3 - 1) - $3
               AS before
    ), appended AS (
        INSERT INTO events (position, event_id, stream_id, stream_version, event_type,
                            schema_version, data, metadata, occurred_at, recorded_at)
        SELECT reserved.before + e.n, e.event_id, e.stream_id, e.stream_version, e.type,
               e.schema_version, e.data,
               jsonb_build_object('correlation_id', e.correlation_id,
                                  'causation_id', e.causation_id,
                                  'user_id', e.user_id, 'trace_context', e.trace_context),
               e.occurred_at, $2
        FROM reserved, ROWS FROM (json_to_recordset($1::text::json) AS (
            event_id uuid, type text, schema_version int, stream_id text, stream_version int,
            occurred_at timestamptz, correlation_id uuid, causation_id uuid, user_id text,
            trace_context jsonb, data jsonb)) WITH ORDINALITY AS e(
            event_id, type, schema_version, stream_id, stream_version, occurred_at,
            correlation_id, causation_id, user_id, trace_context, data, n)
    )
    SELECT before FROM reserved
"""


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream since it was read."""


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    envelope: Envelope
    recorded_at: datetime


def _recorded(row: Any) -> RecordedEvent:
    meta = row.metadata_ or {}
    env = Envelope(
        event_id=row.event_id,
        type=row.event_type,
        schema_version=row.schema_version,
        stream_id=row.stream_id,
        stream_version=row.stream_version,
        occurred_at=row.occurred_at,
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        user_id=meta.get("user_id"),
        trace_context=meta.get("trace_context") or {},
        data=row.data,
    )
    return RecordedEvent(position=row.position, envelope=env, recorded_at=row.recorded_at)


_COLUMNS = (
    _events.c.position,
    _events.c.event_id,
    _events.c.stream_id,
    _events.c.stream_version,
    _events.c.event_type,
    _events.c.schema_version,
    _events.c.data,
    _events.c.metadata.label("metadata_"),
    _events.c.occurred_at,
    _events.c.recorded_at,
)


class EventStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._driver: asyncpg.Connection | None = None

    async def lock_appends(self) -> asyncpg.Connection:
        """Take the append lock (held until the transaction ends) and return the transaction's
        asyncpg connection for the write path. Every write below needs this first."""
        if self._driver is None:
            # Through SQLAlchemy, so that its transaction is open before asyncpg is used directly.
            await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
            self._driver = await driver_connection(self.conn)
        return self._driver

    async def load(self, stream_id: str) -> list[RecordedEvent]:
        result = await self.conn.execute(
            sa.select(*_COLUMNS)
            .where(_events.c.stream_id == stream_id)
            .order_by(_events.c.stream_version)
        )
        return [_recorded(row) for row in result]

    async def append(
        self, stream_id: str, expected_version: int, envelopes: list[Envelope]
    ) -> list[RecordedEvent]:
        """Append after `expected_version`; ConcurrencyConflict if the stream moved on."""
        numbered = [
            env.model_copy(update={"stream_id": stream_id, "stream_version": expected_version + i})
            for i, env in enumerate(envelopes, start=1)
        ]
        return await self.append_versioned(numbered)

    async def append_versioned(
        self,
        envelopes: list[Envelope],
        recorded_at: datetime | None = None,
    ) -> list[RecordedEvent]:
        """Append envelopes that carry their stream id and version, in one statement.

        A taken (stream id, version) raises ConcurrencyConflict: someone appended first.
        """
        if not envelopes:
            return []
        pg = await self.lock_appends()
        at = recorded_at or datetime.now(UTC)
        try:
            before = await pg.fetchval(
                _APPEND, pydantic_core.to_json(envelopes).decode(), at, len(envelopes)
            )
        except asyncpg.UniqueViolationError as exc:
            # The transaction is lost; the caller reloads and decides again.
            raise ConcurrencyConflict(str(envelopes[0].stream_id)) from exc
        return [
            RecordedEvent(position=before + n, envelope=env, recorded_at=at)
            for n, env in enumerate(envelopes, start=1)
        ]

    async def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        result = await self.conn.execute(
            sa.select(*_COLUMNS)
            .where(_events.c.position > position)
            .order_by(_events.c.position)
            .limit(limit)
        )
        return [_recorded(row) for row in result]

    async def notify(self) -> None:
        pg = await self.lock_appends()
        await pg.execute(f"NOTIFY {EVENTS_CHANNEL}")
