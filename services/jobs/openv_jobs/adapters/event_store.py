"""The event store on Postgres. Operations take an open connection so that a caller composes
appends and projection updates into one transaction.

A stream's reads go through SQLAlchemy. The write path (one appending transaction per consumer
batch) talks to the same connection's asyncpg driver directly, and the relay's read to its own
asyncpg connection: that skips SQLAlchemy's per-statement and per-row work where it is paid
once per event.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import pydantic_core
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_contracts import Envelope, Message
from openv_infra.db import driver_connection
from openv_jobs.adapters.tables import StoredEvent
from openv_jobs.service_layer.recorder import ConcurrencyConflict, NewEvent, RecordedEvent

#: Advisory lock taken first by every appending transaction: positions are then assigned in
#: commit order, so a reader that saw position N can never later find a smaller new one.
APPEND_LOCK_KEY: Final = 0x0E_5E_0001
#: Channel the followers listen on; every appending transaction notifies it (sent at commit).
EVENTS_CHANNEL: Final = "openv_events"

_events = StoredEvent.__table__  # type: ignore[attr-defined]


# The last position this session took, and a notification to the followers (sent at commit).
_LAST_TAKEN_POSITION = """
    SELECT currval(pg_get_serial_sequence('events', 'position')) FROM pg_notify($1, '')
"""
# Written by `write`; `position` comes from the identity, in the order of the rows.
_WRITTEN_COLUMNS = (
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "metadata",
    "occurred_at",
    "recorded_at",
)


def _recorded(row: Any) -> RecordedEvent:
    return _stored(*row)


def _stored(
    position: int,
    event_id: UUID,
    stream_id: str,
    stream_version: int,
    event_type: str,
    schema_version: int,
    data: dict[str, Any],
    meta: dict[str, Any] | None,
    occurred_at: datetime,
    recorded_at: datetime,
) -> RecordedEvent:
    """A stored event from its row's columns (_COLUMNS order), its envelope rebuilt."""
    meta = meta or {}
    env = Envelope(
        event_id=event_id,
        type=event_type,
        schema_version=schema_version,
        stream_id=stream_id,
        stream_version=stream_version,
        occurred_at=occurred_at,
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        user_id=meta.get("user_id"),
        trace_context=meta.get("trace_context") or {},
        data=data,
    )
    return RecordedEvent(position=position, appended=env, recorded_at=recorded_at)


# In one round trip: the checkpoint moved to $2 (the position published so far, unless
# NULL), and up to $3 events after it; with NULL, after the saved checkpoint (none yet: from
# the start). JSON as text, which pydantic parses faster than asyncpg's json codec would.
# Every row also carries the log's head, for the lag metric. An unchanged checkpoint is not
# written again (an idle follower polls).
_SAVE_AND_READ = """
    WITH saved AS (
        INSERT INTO checkpoints (name, position) SELECT $1, $2::bigint WHERE $2 IS NOT NULL
        ON CONFLICT (name) DO UPDATE SET position = excluded.position
        WHERE checkpoints.position IS DISTINCT FROM excluded.position
    )
    SELECT position, event_id, stream_id, stream_version, event_type, schema_version,
           data::text, metadata::text, occurred_at, recorded_at,
           (SELECT max(position) FROM events) AS head
    FROM events
    WHERE position > coalesce(
        $2::bigint, (SELECT position FROM checkpoints WHERE name = $1), 0
    )
    ORDER BY position LIMIT $3
"""


async def save_and_read_after(
    pg: asyncpg.Connection, checkpoint: str, position: int | None, limit: int
) -> tuple[list[RecordedEvent], int]:
    """Move the named checkpoint to `position` (None: leave it) and read up to `limit`
    events after it (None: after the saved checkpoint), in position order. Returns them and
    the log's head (0 when nothing follows: the reader is at the head)."""
    from_json = pydantic_core.from_json
    rows = await pg.fetch(_SAVE_AND_READ, checkpoint, position, limit)
    events = [
        _stored(p, e, s, v, t, sv, from_json(data), from_json(meta), at, rec)
        for p, e, s, v, t, sv, data, meta, at, rec, _ in rows
    ]
    return events, (int(rows[0][-1]) if rows else 0)


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


def _row(event: Envelope | NewEvent, recorded_at: datetime) -> tuple[Any, ...]:
    """The event's row, in _WRITTEN_COLUMNS order."""
    to_json = pydantic_core.to_json
    data: Message | dict[str, Any]
    if isinstance(event, NewEvent):
        # The decision path's, once per event: the envelope's fields as `follow` derives
        # them, and the message serialized straight to the JSON its envelope's `data` would
        # give (tests/unit/test_contracts.py holds this row equal to its envelope's).
        message, cause = event.message, event.cause
        type_name, schema_version, data = message.TYPE, message.VERSION, message
        metadata = {
            "correlation_id": cause.correlation_id or cause.event_id,
            "causation_id": cause.event_id,
            "user_id": event.user_id,
            "trace_context": cause.trace_context,
        }
    else:
        type_name, schema_version, data = event.type, event.schema_version, event.data
        metadata = {
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "user_id": event.user_id,
            "trace_context": event.trace_context,
        }
    return (
        event.event_id,
        event.stream_id,
        event.stream_version,
        type_name,
        schema_version,
        to_json(data).decode(),
        to_json(metadata).decode(),
        event.occurred_at,
        recorded_at,
    )


class EventStore:
    def __init__(self, conn: AsyncConnection, locked: asyncpg.Connection | None = None) -> None:
        """`locked`: `conn`'s driver connection in a transaction that holds the append lock
        already (AppendConnection); without it, the first write takes the lock."""
        self.conn = conn
        self._driver = locked

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
        """Append envelopes that carry their stream id and version.

        A taken (stream id, version) raises ConcurrencyConflict: someone appended first.
        """
        at = recorded_at or datetime.now(UTC)
        await self.write(envelopes, at)
        return await self.numbered(envelopes, at)

    async def write(self, events: Sequence[Envelope | NewEvent], recorded_at: datetime) -> None:
        """COPY events that carry their stream id and version into the log: binary, and one
        message to Postgres, which inserts while the caller goes on deciding. Their positions
        are the identity's next values, in order; `numbered` reads them back.

        A taken (stream id, version) or event id raises ConcurrencyConflict; the transaction
        is lost then, and the caller reloads and decides again.
        """
        if not events:
            return
        pg = await self.lock_appends()
        rows = [_row(event, recorded_at) for event in events]
        try:
            await pg.copy_records_to_table("events", records=rows, columns=_WRITTEN_COLUMNS)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyConflict(str(rows[0][1])) from exc

    async def numbered(
        self, written: Sequence[Envelope | NewEvent], recorded_at: datetime
    ) -> list[RecordedEvent]:
        """`written`, everything this transaction wrote since it last asked, in the order
        written, with their positions; and the followers told (NOTIFY, sent at commit).

        Under the append lock nobody else takes positions, so this transaction's are
        consecutive and end at the one it took last: one round trip for any number of writes.
        """
        if not written:
            return []
        pg = await self.lock_appends()
        before = await pg.fetchval(_LAST_TAKEN_POSITION, EVENTS_CHANNEL) - len(written)
        return [
            RecordedEvent._appended(before + n, event, recorded_at)
            for n, event in enumerate(written, start=1)
        ]
