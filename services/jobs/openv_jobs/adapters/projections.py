"""The `videos` and `user_usage` projections, kept in step with the log inside the appending
transaction (read-your-writes for the gateway), and their checkpoint."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.event_store import Alongside
from openv_jobs.adapters.tables import Checkpoint, UsageRow, VideoRow
from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState
from openv_shared.contracts.video import VideoParams, VideoStatus

PROJECTIONS_CHECKPOINT: Final = "projections"
#: Counts swaps of rebuilt projections (see load_marker).
PROJECTIONS_EPOCH: Final = "projections_epoch"

_videos = VideoRow.__table__  # type: ignore[attr-defined]
_usage = UsageRow.__table__  # type: ignore[attr-defined]
_checkpoints = Checkpoint.__table__  # type: ignore[attr-defined]


#: Column order of the rows video_record and usage_record produce (the tables' own order).
VIDEO_COLUMNS: Final = tuple(c.name for c in _videos.columns)
USAGE_COLUMNS: Final = tuple(c.name for c in _usage.columns)
_VIDEO_RECORD: Final = (
    "video_id", "user_id", "status", "progress", "prompt", "params", "duration_seconds",
    "charged_seconds", "object_prefix", "runpod_job_id", "object_key", "size_bytes",
    "content_type", "error_code", "error_message", "file_deleted", "created_at", "updated_at",
    "started_at", "completed_at", "version",
)  # fmt: skip
if VIDEO_COLUMNS != _VIDEO_RECORD or USAGE_COLUMNS != (
    "user_id",
    "active_jobs",
    "period_start",
    "used_seconds",
):  # pragma: no cover (fails at import, so every test run checks it)
    raise RuntimeError("the projection tables' columns changed: update the record functions")


def video_record(state: VideoState) -> tuple[Any, ...]:
    """A `videos` row in VIDEO_COLUMNS order; `params` as JSON text (cast to jsonb in SQL)."""
    return (
        state.video_id,
        state.user_id,
        state.status.value,
        state.progress,
        state.prompt,
        state.params.model_dump_json(),
        state.duration_seconds,
        state.charged_seconds,
        state.object_prefix,
        state.runpod_job_id,
        state.object_key,
        state.size_bytes,
        state.content_type,
        state.error_code,
        state.error_message,
        state.file_deleted,
        state.created_at,
        state.updated_at,
        state.started_at,
        state.completed_at,
        state.version,
    )


def usage_record(usage: Usage) -> tuple[Any, ...]:
    """A `user_usage` row in USAGE_COLUMNS order."""
    return (usage.user_id, usage.active_jobs, usage.period_start, usage.used_seconds)


_SELECT_VIDEOS = (
    f"SELECT {', '.join(c if c != 'params' else 'params::text' for c in VIDEO_COLUMNS)} "  # noqa: S608 (names from the model)
    "FROM videos WHERE video_id = ANY($1::uuid[])"
)


def state_from_record(row: Any) -> VideoState:
    """The inverse of video_record (columns by position, as selected by _SELECT_VIDEOS)."""
    (
        video_id,
        user_id,
        status,
        progress,
        prompt,
        params,
        duration_seconds,
        charged_seconds,
        object_prefix,
        runpod_job_id,
        object_key,
        size_bytes,
        content_type,
        error_code,
        error_message,
        file_deleted,
        created_at,
        updated_at,
        started_at,
        completed_at,
        version,
    ) = row
    return VideoState(
        video_id=video_id,
        user_id=user_id,
        status=VideoStatus(status),
        prompt=prompt,
        params=VideoParams.model_validate_json(params),
        duration_seconds=duration_seconds,
        created_at=created_at,
        updated_at=updated_at,
        version=version,
        object_prefix=object_prefix,
        charged_seconds=charged_seconds,
        progress=progress,
        started_at=started_at,
        completed_at=completed_at,
        runpod_job_id=runpod_job_id,
        object_key=object_key,
        size_bytes=size_bytes,
        content_type=content_type,
        error_code=error_code,
        error_message=error_message,
        file_deleted=file_deleted,
    )


async def load_states(pg: asyncpg.Connection, video_ids: Iterable[UUID]) -> dict[UUID, VideoState]:
    """Current states from the projection. Under the append lock it is exactly the folded log."""
    ids = list(set(video_ids))
    if not ids:
        return {}
    rows = await pg.fetch(_SELECT_VIDEOS, ids)
    return {row[0]: state_from_record(row) for row in rows}


async def load_usages(pg: asyncpg.Connection, user_ids: Iterable[str]) -> dict[str, Usage]:
    """The users' usage rows; users without one are absent. Callers hold the append lock,
    which serializes every decision, so no row lock is needed on top."""
    users = list(set(user_ids))
    if not users:
        return {}
    rows = await pg.fetch(
        "SELECT user_id, active_jobs, period_start, used_seconds FROM user_usage "
        "WHERE user_id = ANY($1::text[])",
        users,
    )
    return {row[0]: Usage(*row) for row in rows}


async def read_usage(conn: AsyncConnection, user_id: str, now: datetime) -> Usage:
    row = (await conn.execute(sa.select(_usage).where(_usage.c.user_id == user_id))).first()
    period = usage_rules.period_of(now)
    if row is None:
        return Usage(user_id, 0, period, 0.0)
    return Usage(row.user_id, row.active_jobs, row.period_start, row.used_seconds).in_period(period)


def _upsert_sql(table: sa.Table, key: str, param: str) -> str:
    """Upsert a JSON array of rows (objects keyed by column name) in one statement: the rows
    are serialized in pydantic-core and parsed by Postgres, far cheaper than encoding one
    parameter array per column element by element."""
    updates = ", ".join(f"{c.name} = excluded.{c.name}" for c in table.columns if c.name != key)
    return (
        f"INSERT INTO {table.name} "  # noqa: S608 (names from the model)
        f"SELECT * FROM json_populate_recordset(NULL::{table.name}, {param}::text::json) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


# VideoState and Usage have exactly their tables' column names as fields.
_STATES_JSON: Final = TypeAdapter(list[VideoState])
_USAGES_JSON: Final = TypeAdapter(list[Usage])
_UPSERT_VIDEOS_ALONGSIDE: Final = _upsert_sql(_videos, "video_id", "$3")
_UPSERT_USAGE: Final = _upsert_sql(_usage, "user_id", "$1")


def videos_alongside(states: list[VideoState]) -> Alongside:
    """The `videos` upsert of these states, to run in an append's statement."""
    return Alongside(_UPSERT_VIDEOS_ALONGSIDE, _STATES_JSON.dump_json(states).decode())


_SAVE_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (name, position) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)


async def save_usages(pg: asyncpg.Connection, usages: list[Usage], position: int) -> None:
    """Write changed `user_usage` rows and the projections' checkpoint (the `videos` rows went
    with their events, see videos_alongside)."""
    if usages:
        await pg.execute(_UPSERT_USAGE, _USAGES_JSON.dump_json(usages).decode())
    await pg.execute(_SAVE_CHECKPOINT, PROJECTIONS_CHECKPOINT, position)


async def load_marker(pg: asyncpg.Connection) -> tuple[int, int]:
    """(checkpoint, rebuild epoch) of the projections: equal markers mean nobody else wrote
    them in between, so states a process cached under the first are still current."""
    row = await pg.fetchrow(
        "SELECT coalesce(max(position) FILTER (WHERE name = $1), 0), "
        "coalesce(max(position) FILTER (WHERE name = $2), 0) "
        "FROM checkpoints WHERE name IN ($1, $2)",
        PROJECTIONS_CHECKPOINT,
        PROJECTIONS_EPOCH,
    )
    assert row is not None  # an aggregate always returns one row
    return int(row[0]), int(row[1])


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
