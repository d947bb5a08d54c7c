"""The event store on Postgres. Operations take an open connection so that a caller composes
dedupe, append and projection updates into one transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from openv_shared.contracts import Envelope
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.tables import ProcessedMessage, StoredEvent

#: Advisory lock taken first by every appending transaction: positions are then assigned in
#: commit order, so a reader that saw position N can never later find a smaller new one.
APPEND_LOCK_KEY: Final = 0x0E_5E_0001
#: Channel the relay listens on; appenders notify it after a commit.
EVENTS_CHANNEL: Final = "openv_events"

_events = StoredEvent.__table__  # type: ignore[attr-defined]
_processed = ProcessedMessage.__table__  # type: ignore[attr-defined]


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream since it was read."""


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    envelope: Envelope
    recorded_at: datetime


def _metadata(env: Envelope) -> dict[str, Any]:
    return {
        "correlation_id": str(env.correlation_id) if env.correlation_id else None,
        "causation_id": str(env.causation_id) if env.causation_id else None,
        "user_id": env.user_id,
        "trace_context": env.trace_context,
    }


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

    async def lock_appends(self) -> None:
        await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))

    async def mark_processed(self, message_id: UUID, message_type: str) -> bool:
        """Record that a message is handled; False if it already was (a redelivery)."""
        result = await self.conn.execute(
            pg_insert(_processed)
            .values(message_id=message_id, message_type=message_type)
            .on_conflict_do_nothing()
            .returning(_processed.c.message_id)
        )
        return result.first() is not None

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
        rows = [
            {
                "event_id": env.event_id,
                "stream_id": stream_id,
                "stream_version": expected_version + i,
                "event_type": env.type,
                "schema_version": env.schema_version,
                "data": env.data,
                "metadata": _metadata(env),
                "occurred_at": env.occurred_at,
            }
            for i, env in enumerate(envelopes, start=1)
        ]
        try:
            async with self.conn.begin_nested():
                result = await self.conn.execute(
                    sa.insert(_events).values(rows).returning(*_COLUMNS)
                )
                recorded = [_recorded(row) for row in result]
        except IntegrityError as exc:
            raise ConcurrencyConflict(stream_id) from exc
        recorded.sort(key=lambda r: r.position)
        return recorded

    async def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        result = await self.conn.execute(
            sa.select(*_COLUMNS)
            .where(_events.c.position > position)
            .order_by(_events.c.position)
            .limit(limit)
        )
        return [_recorded(row) for row in result]

    async def notify(self) -> None:
        await self.conn.execute(sa.text(f"NOTIFY {EVENTS_CHANNEL}"))
