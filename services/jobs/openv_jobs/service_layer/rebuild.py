"""Rebuild every projection from the event log into fresh tables, optionally swapping them in.

The log is folded without locks up to its head, then the append lock is taken, the tail that
arrived meanwhile is folded, and (with `swap`) the fresh tables replace the live ones in the
same transaction, so no event is missed and readers never see a half-built table.
"""

import json
import logging
import time
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import asyncpg

from openv_jobs.adapters import projections
from openv_jobs.adapters.event_store import APPEND_LOCK_KEY
from openv_jobs.domain.projection import apply_event
from openv_jobs.domain.usage import Usage, period_of
from openv_jobs.domain.video import VideoState
from openv_shared.contracts.base import Message, message_class
from openv_shared.contracts.upcasting import upcast

log = logging.getLogger(__name__)

#: Live table -> its fresh twin while rebuilding.
TABLES: Final = {"videos": "videos_rebuild", "user_usage": "user_usage_rebuild"}
_FETCH = 2_000


@dataclass
class RebuildResult:
    events: int
    videos: int
    users: int
    seconds: float
    swapped: bool

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Fold:
    """In-memory projections, fed events in position order."""

    def __init__(self) -> None:
        self.states: dict[UUID, VideoState] = {}
        self.usages: dict[str, Usage] = {}
        self.position = 0
        self.events = 0

    def feed(self, row: asyncpg.Record) -> None:
        # Columns by index (see _SELECT): this runs once per event of the whole log.
        position, type_name, version, data, row_user, at = row
        message = _message(type_name, version, data)
        video_id: UUID = message.video_id  # type: ignore[attr-defined]
        state = self.states.get(video_id)
        user_id = state.user_id if state else (row_user or "")
        usage = self.usages.get(user_id) or Usage(user_id, 0, period_of(at), 0.0)
        self.states[video_id], self.usages[user_id] = apply_event(
            state, usage, message, user_id, at
        )
        self.position = position
        self.events += 1


def _message(type_name: str, version: int, data: str) -> Message:
    cls = message_class(type_name)
    if version == cls.VERSION:
        return cls.model_validate_json(data)
    return cls.model_validate(upcast(type_name, version, cls.VERSION, json.loads(data)))


_SELECT = """
    SELECT position, event_type, schema_version, data::text AS data,
           metadata->>'user_id' AS user_id, recorded_at
    FROM events WHERE position > $1 ORDER BY position
"""


async def _fold_from(conn: asyncpg.Connection, fold: _Fold) -> None:
    """Feed every event after the fold's position (inside the caller's transaction)."""
    async for row in conn.cursor(_SELECT, fold.position, prefetch=_FETCH):
        fold.feed(row)


async def rebuild(dsn: str, swap: bool = False) -> RebuildResult:
    started = time.perf_counter()
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        fold = _Fold()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await _fold_from(conn, fold)  # the bulk, while appends go on
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK_KEY)
            await _fold_from(conn, fold)  # the tail that arrived meanwhile
            await _write(conn, fold)
            if swap:
                await _swap(conn)
    finally:
        await conn.close()
    result = RebuildResult(
        fold.events, len(fold.states), len(fold.usages), time.perf_counter() - started, swap
    )
    log.info("rebuilt projections: %s", result)
    return result


async def _write(conn: asyncpg.Connection, fold: _Fold) -> None:
    for live, fresh in TABLES.items():
        await conn.execute(f"DROP TABLE IF EXISTS {fresh}")
        # Staging tables without indexes: loading is faster, and swapping copies rows anyway.
        await conn.execute(f"CREATE TABLE {fresh} (LIKE {live} INCLUDING DEFAULTS)")
    await conn.copy_records_to_table(
        TABLES["videos"],
        records=map(projections.video_record, fold.states.values()),
        columns=projections.VIDEO_COLUMNS,
    )
    await conn.copy_records_to_table(
        TABLES["user_usage"],
        records=map(projections.usage_record, fold.usages.values()),
        columns=projections.USAGE_COLUMNS,
    )


async def _swap(conn: asyncpg.Connection) -> None:
    # Copy rather than rename: the live tables keep their names, indexes and constraints.
    for live, fresh in TABLES.items():
        await conn.execute(f"TRUNCATE {live}")
        await conn.execute(f"INSERT INTO {live} SELECT * FROM {fresh}")  # noqa: S608 (constants)
        await conn.execute(f"DROP TABLE {fresh}")
    await conn.execute(
        "INSERT INTO checkpoints (name, position) VALUES ($1, "
        "(SELECT coalesce(max(position), 0) FROM events)) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        projections.PROJECTIONS_CHECKPOINT,
    )
    # A new epoch: jobs processes drop the states they cached from the old tables.
    await conn.execute(
        "INSERT INTO checkpoints (name, position) VALUES ($1, 1) "
        "ON CONFLICT (name) DO UPDATE SET position = checkpoints.position + 1",
        projections.PROJECTIONS_EPOCH,
    )
