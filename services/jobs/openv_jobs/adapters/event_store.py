"""The event store on Postgres. Operations take an open connection so that a caller composes
dedupe, append and projection updates into one transaction."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.tables import ProcessedMessage, StoredEvent
from openv_shared.contracts import Envelope

#: Advisory lock taken first by every appending transaction: positions are then assigned in
#: commit order, so a reader that saw position N can never later find a smaller new one.
APPEND_LOCK_KEY: Final = 0x0E_5E_0001
#: Channel the relay listens on; appenders notify it after a commit.
EVENTS_CHANNEL: Final = "openv_events"

_events = StoredEvent.__table__  # type: ignore[attr-defined]
_processed = ProcessedMessage.__table__  # type: ignore[attr-defined]


# Array parameters and unnest: one statement per batch whatever its size, compiled once.
_APPEND = sa.text(
    """
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        data, metadata, occurred_at, recorded_at)
    SELECT e, s, v, t, sv, d::jsonb, m::jsonb, o, :recorded_at
    FROM unnest(CAST(:event_id AS uuid[]), CAST(:stream_id AS text[]),
                CAST(:stream_version AS int[]), CAST(:event_type AS text[]),
                CAST(:schema_version AS int[]), CAST(:data AS text[]),
                CAST(:metadata AS text[]), CAST(:occurred_at AS timestamptz[]))
         AS u(e, s, v, t, sv, d, m, o)
    RETURNING event_id, position
    """
)
_MARK_PROCESSED = sa.text(
    """
    INSERT INTO processed_messages (message_id, message_type)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]))
    ON CONFLICT DO NOTHING
    RETURNING message_id
    """
)


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

    async def mark_processed(self, messages: dict[UUID, str]) -> set[UUID]:
        """Record messages (id -> type) as handled; returns the ids not handled before."""
        if not messages:
            return set()
        result = await self.conn.execute(
            _MARK_PROCESSED, {"ids": list(messages), "types": list(messages.values())}
        )
        return {row.message_id for row in result}

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
        self, envelopes: list[Envelope], recorded_at: datetime | None = None
    ) -> list[RecordedEvent]:
        """Append envelopes that carry their stream id and version, in one statement.

        A taken (stream id, version) raises ConcurrencyConflict: someone appended first.
        """
        if not envelopes:
            return []
        at = recorded_at or datetime.now(UTC)
        params = {
            "event_id": [env.event_id for env in envelopes],
            "stream_id": [env.stream_id for env in envelopes],
            "stream_version": [env.stream_version for env in envelopes],
            "event_type": [env.type for env in envelopes],
            "schema_version": [env.schema_version for env in envelopes],
            "data": [json.dumps(env.data) for env in envelopes],
            "metadata": [json.dumps(_metadata(env)) for env in envelopes],
            "occurred_at": [env.occurred_at for env in envelopes],
            "recorded_at": at,
        }
        try:
            result = await self.conn.execute(_APPEND, params)
        except IntegrityError as exc:
            # The transaction is lost; the caller reloads and decides again.
            raise ConcurrencyConflict(str(envelopes[0].stream_id)) from exc
        positions = {row.event_id: row.position for row in result}
        recorded = [
            RecordedEvent(position=positions[env.event_id], envelope=env, recorded_at=at)
            for env in envelopes
        ]
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
