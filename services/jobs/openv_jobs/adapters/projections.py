"""The `videos` and `user_usage` projections, kept in step with the log inside the appending
transaction (read-your-writes for the gateway), and their checkpoint."""

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from openv_shared.contracts.video import VideoParams, VideoStatus
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openv_jobs.adapters.event_store import RecordedEvent
from openv_jobs.adapters.tables import Checkpoint, UsageRow, VideoRow
from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState, evolve, start

PROJECTIONS_CHECKPOINT: Final = "projections"

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


async def lock_usage(conn: AsyncConnection, user_id: str, now: datetime) -> Usage:
    """The user's usage row, locked until the transaction ends (one decision at a time)."""
    await conn.execute(
        pg_insert(_usage)
        .values(
            user_id=user_id,
            active_jobs=0,
            period_start=usage_rules.period_of(now),
            used_seconds=0.0,
        )
        .on_conflict_do_nothing()
    )
    row = (
        await conn.execute(sa.select(_usage).where(_usage.c.user_id == user_id).with_for_update())
    ).one()
    return Usage(row.user_id, row.active_jobs, row.period_start, row.used_seconds).in_period(
        usage_rules.period_of(now)
    )


async def read_usage(conn: AsyncConnection, user_id: str, now: datetime) -> Usage:
    row = (await conn.execute(sa.select(_usage).where(_usage.c.user_id == user_id))).first()
    period = usage_rules.period_of(now)
    if row is None:
        return Usage(user_id, 0, period, 0.0)
    return Usage(row.user_id, row.active_jobs, row.period_start, row.used_seconds).in_period(period)


async def apply(
    conn: AsyncConnection, before: VideoState | None, recorded: list[RecordedEvent]
) -> VideoState | None:
    """Project newly recorded events of one video: its row, its owner's usage, the checkpoint."""
    state = before
    usage: Usage | None = None
    for event in recorded:
        msg = event.envelope.message()
        previous = state
        state = fold([event], state)
        assert state is not None
        if usage is None:
            usage = await lock_usage(conn, state.user_id, event.recorded_at)
        usage = usage_rules.apply(usage, previous, msg, event.recorded_at)
    if state is None or usage is None:
        return state
    row = video_row(state)
    await conn.execute(
        pg_insert(_videos)
        .values(**row)
        .on_conflict_do_update(index_elements=[_videos.c.video_id], set_=row)
    )
    await conn.execute(
        sa.update(_usage)
        .where(_usage.c.user_id == usage.user_id)
        .values(
            active_jobs=usage.active_jobs,
            period_start=usage.period_start,
            used_seconds=usage.used_seconds,
        )
    )
    await save_checkpoint(conn, PROJECTIONS_CHECKPOINT, recorded[-1].position)
    return state


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
