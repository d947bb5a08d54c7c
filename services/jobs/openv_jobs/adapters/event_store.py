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


_LAST_TAKEN_POSITION = "SELECT currval(pg_get_serial_sequence('events', 'position'))"
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
        """Append envelopes that carry their stream id and version.

        A taken (stream id, version) raises ConcurrencyConflict: someone appended first.
        """
        at = recorded_at or datetime.now(UTC)
        await self.write(envelopes, at)
        return await self.numbered(envelopes, at)

    async def write(self, envelopes: list[Envelope], recorded_at: datetime) -> None:
        """COPY envelopes that carry their stream id and version into the log: binary, and
        one message to Postgres, which inserts while the caller goes on deciding. Their
        positions are the identity's next values, in order; `numbered` reads them back.

        A taken (stream id, version) or event id raises ConcurrencyConflict; the transaction
        is lost then, and the caller reloads and decides again.
        """
        if not envelopes:
            return
        pg = await self.lock_appends()
        to_json = pydantic_core.to_json
        rows = [
            (
                env.event_id,
                env.stream_id,
                env.stream_version,
                env.type,
                env.schema_version,
                to_json(env.data).decode(),
                to_json(
                    {
                        "correlation_id": env.correlation_id,
                        "causation_id": env.causation_id,
                        "user_id": env.user_id,
                        "trace_context": env.trace_context,
                    }
                ).decode(),
                env.occurred_at,
                recorded_at,
            )
            for env in envelopes
        ]
        try:
            await pg.copy_records_to_table("events", records=rows, columns=_WRITTEN_COLUMNS)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyConflict(str(envelopes[0].stream_id)) from exc

    async def numbered(self, written: list[Envelope], recorded_at: datetime) -> list[RecordedEvent]:
        """`written`, everything this transaction wrote since it last asked, in the order
        written, with their positions.

        Under the append lock nobody else takes positions, so this transaction's are
        consecutive and end at the one it took last: one round trip for any number of writes.
        """
        if not written:
            return []
        pg = await self.lock_appends()
        before = await pg.fetchval(_LAST_TAKEN_POSITION) - len(written)
        return [
            RecordedEvent(position=before + n, envelope=env, recorded_at=recorded_at)
            for n, env in enumerate(written, start=1)
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
