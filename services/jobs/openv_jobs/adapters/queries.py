"""Read side for the gateway: videos, a user's list with opaque cursors, history, usage."""

import base64
import json
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters import projections
from openv_jobs.adapters.event_store import EventStore
from openv_jobs.adapters.tables import VideoRow
from openv_jobs.domain.usage import Limits, period_end
from openv_shared.contracts.events import video_stream_id
from openv_shared.contracts.queries import (
    EventPage,
    EventView,
    UsageView,
    VideoErrorView,
    VideoPage,
    VideoView,
)
from openv_shared.contracts.video import VideoParams, VideoStatus

_videos = VideoRow.__table__  # type: ignore[attr-defined]


class InvalidCursor(ValueError):
    pass


def encode_cursor(created_at: datetime, video_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(video_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, vid = json.loads(raw)
        return datetime.fromisoformat(created), UUID(vid)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(cursor) from exc


def _view(row: sa.Row[object]) -> VideoView:
    m = row._mapping
    error = (
        VideoErrorView(code=m["error_code"], message=m["error_message"] or "")
        if m["error_code"]
        else None
    )
    return VideoView(
        id=m["video_id"],
        user_id=m["user_id"],
        status=VideoStatus(m["status"]),
        progress=m["progress"],
        prompt=m["prompt"],
        params=VideoParams.model_validate(m["params"]),
        duration_seconds=m["duration_seconds"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        object_key=m["object_key"],
        size_bytes=m["size_bytes"],
        content_type=m["content_type"],
        error=error,
        file_deleted=m["file_deleted"],
        runpod_job_id=m["runpod_job_id"],
        version=m["version"],
    )


class Queries:
    def __init__(self, engine: AsyncEngine, limits: Limits) -> None:
        self.engine = engine
        self.limits = limits

    async def video(self, video_id: UUID) -> VideoView | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(_videos).where(_videos.c.video_id == video_id))
            ).first()
        return _view(row) if row else None

    async def videos(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage:
        """Newest first; the cursor is the last row's (created_at, id), stable under inserts."""
        query = sa.select(_videos)
        if user_id is not None:
            query = query.where(_videos.c.user_id == user_id)
        if status is not None:
            query = query.where(_videos.c.status == status.value)
        if cursor:
            created, vid = decode_cursor(cursor)
            query = query.where(
                sa.tuple_(_videos.c.created_at, _videos.c.video_id) < sa.tuple_(created, vid)
            )
        query = query.order_by(_videos.c.created_at.desc(), _videos.c.video_id.desc()).limit(
            limit + 1
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        views = [_view(r) for r in rows[:limit]]
        next_cursor = (
            encode_cursor(views[-1].created_at, views[-1].id)
            if len(rows) > limit and views
            else None
        )
        return VideoPage(data=views, next_cursor=next_cursor)

    async def events(self, video_id: UUID) -> EventPage:
        async with self.engine.connect() as conn:
            history = await EventStore(conn).load(video_stream_id(video_id))
        return EventPage(
            data=[
                EventView(
                    type=r.envelope.type,
                    occurred_at=r.recorded_at,
                    data=r.envelope.message().model_dump(mode="json"),
                    version=r.envelope.stream_version or 0,
                )
                for r in history
            ]
        )

    async def usage(self, user_id: str, now: datetime) -> UsageView:
        async with self.engine.connect() as conn:
            usage = await projections.read_usage(conn, user_id, now)
        start = usage.period_start
        return UsageView(
            active_jobs=usage.active_jobs,
            max_active_jobs=self.limits.max_active_jobs,
            used_seconds=round(usage.used_seconds, 3),
            quota_seconds=self.limits.quota_seconds,
            period_start=datetime(start.year, start.month, 1, tzinfo=now.tzinfo),
            period_end=datetime.combine(period_end(start), datetime.min.time(), now.tzinfo),
        )
