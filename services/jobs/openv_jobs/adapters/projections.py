"""The `videos` and `user_usage` projections, kept in step with the log inside the appending
transaction (read-your-writes for the gateway), and their checkpoint."""

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.event_store import RecordedEvent
from openv_jobs.adapters.tables import Checkpoint, UsageRow, VideoRow
from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState, evolve, start
from openv_shared.contracts.video import VideoParams, VideoStatus

PROJECTIONS_CHECKPOINT: Final = "projections"

_ENSURE_USAGE = sa.text(
    """
    INSERT INTO user_usage (user_id, active_jobs, period_start, used_seconds)
    SELECT u, 0, :period, 0.0 FROM unnest(CAST(:users AS text[])) AS u
    ON CONFLICT DO NOTHING
    """
)

_videos = VideoRow.__table__  # type: ignore[attr-defined]
_usage = UsageRow.__table__  # type: ignore[attr-defined]
_checkpoints = Checkpoint.__table__  # type: ignore[attr-defined]


def fold(events: list[RecordedEvent], state: VideoState | None = None) -> VideoState | None:
    for recorded in events:
        env = recorded.envelope
        msg = env.message()
        if state is None:
            state = start(msg, env.user_id or "", recorded.recorded_at)
        else:
            state = evolve(state, msg, recorded.recorded_at)
    return state


def video_row(state: VideoState) -> dict[str, Any]:
    return {
        "video_id": state.video_id,
        "user_id": state.user_id,
        "status": state.status.value,
        "progress": state.progress,
        "prompt": state.prompt,
        "params": state.params.model_dump(mode="json"),
        "duration_seconds": state.duration_seconds,
        "charged_seconds": state.charged_seconds,
        "object_prefix": state.object_prefix,
        "runpod_job_id": state.runpod_job_id,
        "object_key": state.object_key,
        "size_bytes": state.size_bytes,
        "content_type": state.content_type,
        "error_code": state.error_code,
        "error_message": state.error_message,
        "file_deleted": state.file_deleted,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "started_at": state.started_at,
        "completed_at": state.completed_at,
        "version": state.version,
    }


def state_from_row(row: Any) -> VideoState:
    return VideoState(
        video_id=row.video_id,
        user_id=row.user_id,
        status=VideoStatus(row.status),
        prompt=row.prompt,
        params=VideoParams.model_validate(row.params),
        duration_seconds=row.duration_seconds,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        object_prefix=row.object_prefix,
        charged_seconds=row.charged_seconds,
        progress=row.progress,
        started_at=row.started_at,
        completed_at=row.completed_at,
        runpod_job_id=row.runpod_job_id,
        object_key=row.object_key,
        size_bytes=row.size_bytes,
        content_type=row.content_type,
        error_code=row.error_code,
        error_message=row.error_message,
        file_deleted=row.file_deleted,
    )


async def load_states(conn: AsyncConnection, video_ids: Iterable[UUID]) -> dict[UUID, VideoState]:
    """Current states from the projection. Under the append lock it is exactly the folded log."""
    ids = list(set(video_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(_videos).where(_videos.c.video_id == sa.func.any_(sa.bindparam("ids"))),
        {"ids": ids},
    )
    return {row.video_id: state_from_row(row) for row in rows}


async def lock_usages(
    conn: AsyncConnection, user_ids: Iterable[str], now: datetime
) -> dict[str, Usage]:
    """The users' usage rows, locked until the transaction ends (one decision at a time)."""
    users = sorted(set(user_ids))  # a fixed order: two lockers cannot deadlock
    if not users:
        return {}
    period = usage_rules.period_of(now)
    await conn.execute(_ENSURE_USAGE, {"users": users, "period": period})
    rows = await conn.execute(
        sa.select(_usage)
        .where(_usage.c.user_id == sa.func.any_(sa.bindparam("users")))
        .order_by(_usage.c.user_id)
        .with_for_update(),
        {"users": users},
    )
    return {
        row.user_id: Usage(row.user_id, row.active_jobs, row.period_start, row.used_seconds)
        for row in rows
    }


async def read_usage(conn: AsyncConnection, user_id: str, now: datetime) -> Usage:
    row = (await conn.execute(sa.select(_usage).where(_usage.c.user_id == user_id))).first()
    period = usage_rules.period_of(now)
    if row is None:
        return Usage(user_id, 0, period, 0.0)
    return Usage(row.user_id, row.active_jobs, row.period_start, row.used_seconds).in_period(period)


@functools.cache
def _upsert_sql(table: sa.Table, key: str) -> sa.TextClause:
    """INSERT ... SELECT FROM unnest(arrays) ON CONFLICT UPDATE: one statement per batch."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    names = [c.name for c in table.columns]
    casts = []
    for c in table.columns:
        pg_type = c.type.compile(dialect=dialect)
        # jsonb travels as text and is cast per element (arrays of jsonb need no codec).
        array_type = "text" if isinstance(c.type, JSONB) else pg_type
        casts.append(f"CAST(:{c.name} AS {array_type}[])")
    selects = [f"u.{n}::jsonb" if isinstance(table.c[n].type, JSONB) else f"u.{n}" for n in names]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
    return sa.text(
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 (names from the model)
        f"SELECT {', '.join(selects)} FROM unnest({', '.join(casts)}) AS u({', '.join(names)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


async def _upsert(
    conn: AsyncConnection, table: sa.Table, key: str, rows: list[dict[str, Any]]
) -> None:
    params: dict[str, list[Any]] = {}
    for c in table.columns:
        values = [row[c.name] for row in rows]
        params[c.name] = [json.dumps(v) for v in values] if isinstance(c.type, JSONB) else values
    await conn.execute(_upsert_sql(table, key), params)


def usage_row(usage: Usage) -> dict[str, Any]:
    return {
        "user_id": usage.user_id,
        "active_jobs": usage.active_jobs,
        "period_start": usage.period_start,
        "used_seconds": usage.used_seconds,
    }


async def save(
    conn: AsyncConnection,
    states: Iterable[VideoState],
    usages: Iterable[Usage],
    position: int,
    videos_table: sa.Table = _videos,
    usage_table: sa.Table = _usage,
) -> None:
    """Write changed rows of both projections and their checkpoint."""
    video_rows = [video_row(s) for s in states]
    usage_rows = [usage_row(u) for u in usages]
    if video_rows:
        await _upsert(conn, videos_table, "video_id", video_rows)
    if usage_rows:
        await _upsert(conn, usage_table, "user_id", usage_rows)
    await save_checkpoint(conn, PROJECTIONS_CHECKPOINT, position)


async def save_checkpoint(conn: AsyncConnection, name: str, position: int) -> None:
    await conn.execute(
        pg_insert(_checkpoints)
        .values(name=name, position=position)
        .on_conflict_do_update(index_elements=[_checkpoints.c.name], set_={"position": position})
    )


async def load_checkpoint(conn: AsyncConnection, name: str) -> int:
    row = (
        await conn.execute(sa.select(_checkpoints.c.position).where(_checkpoints.c.name == name))
    ).first()
    return int(row.position) if row else 0
