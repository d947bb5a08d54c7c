"""The `videos` and `user_usage` projections and their checkpoints.

`user_usage` is written in the appending transaction (limits are decided from it). `videos` is
written behind the log by the projector (adapters/projector.py), each batch with its
checkpoint; readers get exact states anyway, because load_states folds the events a row has
not seen yet (its own `version` says which).
"""

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from pydantic import TypeAdapter

from openv_contracts.base import Message, message_class
from openv_contracts.events import video_stream_id
from openv_contracts.upcasting import upcast
from openv_contracts.video import VideoParams, VideoStatus
from openv_jobs.adapters.tables import UsageRow, VideoRow
from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.projection import fold_video
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState

VIDEOS_CHECKPOINT: Final = "videos"
USAGE_CHECKPOINT: Final = "user_usage"

_videos = VideoRow.__table__  # type: ignore[attr-defined]
_usage = UsageRow.__table__  # type: ignore[attr-defined]


#: Column order of the rows video_record and usage_record produce (the tables' own order).
VIDEO_COLUMNS: Final = tuple(c.name for c in _videos.columns)
USAGE_COLUMNS: Final = tuple(c.name for c in _usage.columns)
_VIDEO_RECORD: Final = (
    "video_id", "user_id", "status", "progress", "prompt", "params", "duration_seconds",
    "charged_seconds", "object_prefix", "runpod_job_id", "object_key", "size_bytes",
    "content_type", "error_code", "error_message", "file_deleted", "created_at", "updated_at",
    "started_at", "completed_at", "version", "poster_key",
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
        state.poster_key,
    )


def usage_record(usage: Usage) -> tuple[Any, ...]:
    """A `user_usage` row in USAGE_COLUMNS order."""
    return (usage.user_id, usage.active_jobs, usage.period_start, usage.used_seconds)


_VIDEO_SELECT_LIST = ", ".join(c if c != "params" else "params::text" for c in VIDEO_COLUMNS)


def state_from_record(row: Any) -> VideoState:
    """The inverse of video_record (columns by position, as selected by load_rows)."""
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
        poster_key,
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
        poster_key=poster_key,
    )


def decode_event(type_name: str, version: int, data: str) -> Message:
    """A stored event's message from its `data` JSON, upcast if it is an older version."""
    cls = message_class(type_name)
    if version == cls.VERSION:
        return cls.model_validate_json(data)
    return cls.model_validate(upcast(type_name, version, cls.VERSION, json.loads(data)))


#: Columns a fold needs, in this order (see decode_rows).
EVENT_FOLD_COLUMNS: Final = (
    "position, stream_version, event_type, schema_version, data::text, "
    "metadata->>'user_id', recorded_at"
)
_TAILS = f"""
    SELECT {EVENT_FOLD_COLUMNS}
    FROM unnest($1::text[], $2::int[]) AS s(stream_id, version)
    JOIN events e ON e.stream_id = s.stream_id AND e.stream_version > s.version
    ORDER BY e.position
"""  # noqa: S608 (constants)


#: A stored event ready to fold: its stream version, message, stream's user, recorded time.
Folded = tuple[int, Message, str, datetime]


def decode_rows(rows: Iterable[Any]) -> list[Folded]:
    """Stored events (EVENT_FOLD_COLUMNS) decoded for fold_into."""
    return [(sv, decode_event(t, v, data), user or "", at) for _, sv, t, v, data, user, at in rows]


def fold_into(states: dict[UUID, VideoState], events: Iterable[Folded]) -> None:
    """Fold decoded events, in position order, into `states`; an event a state already
    contains (its version is not newer) is skipped, so folding twice changes nothing."""
    for stream_version, message, user_id, at in events:
        video_id: UUID = message.video_id  # type: ignore[attr-defined]
        state = states.get(video_id)
        if state is None or stream_version > state.version:
            states[video_id] = fold_video(state, message, user_id, at)


async def load_rows(
    pg: asyncpg.Connection, video_ids: Iterable[UUID], table: str = "videos"
) -> dict[UUID, VideoState]:
    """The `videos` rows as the projector left them (possibly behind the log); `table` names
    another table of the same shape (the rebuild's)."""
    ids = list(set(video_ids))
    if not ids:
        return {}
    sql = f"SELECT {_VIDEO_SELECT_LIST} FROM {table} WHERE video_id = ANY($1::uuid[])"  # noqa: S608 (constant names)
    return {row[0]: state_from_record(row) for row in await pg.fetch(sql, ids)}


async def load_states(pg: asyncpg.Connection, video_ids: Iterable[UUID]) -> dict[UUID, VideoState]:
    """Current states: the rows plus the events they have not seen yet.

    Exact whatever the projector's lag: the row is read first, and the log only grows.
    """
    ids = list(set(video_ids))
    states = await load_rows(pg, ids)
    versions = [states[i].version if i in states else 0 for i in ids]
    tails = await pg.fetch(_TAILS, [video_stream_id(i) for i in ids], versions)
    fold_into(states, decode_rows(tails))
    return states


async def load_state_at(pg: asyncpg.Connection, video_id: UUID, version: int) -> VideoState | None:
    """The video as it was once its `version`-th event was recorded (folded from the log)."""
    rows = await pg.fetch(
        f"SELECT {EVENT_FOLD_COLUMNS} FROM events "  # noqa: S608 (constants)
        "WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version",
        video_stream_id(video_id),
        version,
    )
    states: dict[UUID, VideoState] = {}
    fold_into(states, decode_rows(rows))
    return states.get(video_id)


async def unprojected_new_videos(
    pg: asyncpg.Connection, user_id: str | None
) -> list[tuple[datetime, UUID]]:
    """(created at, id) of the videos whose first event the projector has not written yet."""
    rows = await pg.fetch(
        "SELECT recorded_at, (data->>'video_id')::uuid FROM events "
        "WHERE position > (SELECT coalesce(max(position), 0) FROM checkpoints WHERE name = $1) "
        "AND stream_version = 1 AND ($2::text IS NULL OR metadata->>'user_id' = $2)",
        VIDEOS_CHECKPOINT,
        user_id,
    )
    return [(at, video_id) for at, video_id in rows]


async def load_usages(
    pg: asyncpg.Connection, user_ids: Iterable[str], table: str = "user_usage"
) -> dict[str, Usage]:
    """The users' usage rows; users without one are absent. Callers hold the append lock,
    which serializes every decision, so no row lock is needed on top."""
    users = list(set(user_ids))
    if not users:
        return {}
    rows = await pg.fetch(
        f"SELECT user_id, active_jobs, period_start, used_seconds FROM {table} "  # noqa: S608 (constant names)
        "WHERE user_id = ANY($1::text[])",
        users,
    )
    return {row[0]: Usage(*row) for row in rows}


async def read_usage(pg: asyncpg.Connection, user_id: str, now: datetime) -> Usage:
    """A user's usage as of `now` (a new month starts with nothing charged)."""
    period = usage_rules.period_of(now)
    found = (await load_usages(pg, [user_id])).get(user_id)
    return found.in_period(period) if found else Usage(user_id, 0, period, 0.0)


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
# A late projector (or one a rebuild swap overtook) never moves a row backwards.
_UPSERT_VIDEOS: Final = (
    _upsert_sql(_videos, "video_id", "$1") + " WHERE videos.version < excluded.version"
)
_UPSERT_USAGE: Final = _upsert_sql(_usage, "user_id", "$1")
_SAVE_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (name, position) VALUES ($2, $3) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)
# Rows and their checkpoint in one statement: one round trip less per transaction.
_SAVE_VIDEOS: Final = f"WITH upserted AS ({_UPSERT_VIDEOS}) {_SAVE_CHECKPOINT}"
_SAVE_USAGES: Final = f"WITH upserted AS ({_UPSERT_USAGE}) {_SAVE_CHECKPOINT}"


async def save_videos(pg: asyncpg.Connection, states: list[VideoState], position: int) -> None:
    """Write `videos` rows and the projection's checkpoint (the caller's transaction)."""
    await pg.execute(
        _SAVE_VIDEOS, _STATES_JSON.dump_json(states).decode(), VIDEOS_CHECKPOINT, position
    )


async def save_usages(pg: asyncpg.Connection, usages: list[Usage], position: int) -> None:
    """Write changed `user_usage` rows and their checkpoint (the appending transaction)."""
    await pg.execute(
        _SAVE_USAGES, _USAGES_JSON.dump_json(usages).decode(), USAGE_CHECKPOINT, position
    )


async def lock_checkpoint(pg: asyncpg.Connection, name: str) -> int:
    """A checkpoint's position, locked until the transaction ends (one writer at a time)."""
    lock = "SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE"
    position = await pg.fetchval(lock, name)
    if position is None:  # the first time only: one round trip from then on
        await pg.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING", name
        )
        position = await pg.fetchval(lock, name)
    return int(position)


async def log_head(pg: asyncpg.Connection) -> int:
    """The last position in the log. Read under the append lock, an unchanged head means
    nobody appended since, so states a process cached at that head are still current."""
    return int(await pg.fetchval("SELECT coalesce(max(position), 0) FROM events"))
