"""Read side for the gateway: videos, a user's list with opaque cursors, history, usage."""

import base64
import json
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts.events import video_stream_id
from openv_contracts.queries import (
    EventPage,
    EventView,
    UsageView,
    VideoErrorView,
    VideoPage,
    VideoView,
)
from openv_contracts.video import ErrorCode, VideoStatus
from openv_infra.db import driver_connection
from openv_jobs.adapters import projections
from openv_jobs.adapters.event_store import EventStore
from openv_jobs.adapters.tables import VideoRow
from openv_jobs.domain.usage import Limits, period_end, period_of, quota_resets_at
from openv_jobs.domain.video import VideoState

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
        at = datetime.fromisoformat(created)
        # Comparable with the column, and convertible to UTC (a forged year 9999 at -14:00 is
        # not: asyncpg's encoding would fail with OverflowError, a 500).
        at.astimezone(UTC)
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at, UUID(vid)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursor(cursor) from exc


def _view(state: VideoState) -> VideoView:
    error = None
    if state.error_code:
        # A quota refusal's reset time, as its VideoRejected says (same rule, same period).
        retry_at = (
            quota_resets_at(period_of(state.created_at))
            if state.error_code == ErrorCode.QUOTA_EXCEEDED
            else None
        )
        error = VideoErrorView(
            code=state.error_code, message=state.error_message or "", retry_at=retry_at
        )
    return VideoView(
        id=state.video_id,
        user_id=state.user_id,
        status=state.status,
        progress=state.progress,
        prompt=state.prompt,
        params=state.params,
        duration_seconds=state.duration_seconds,
        created_at=state.created_at,
        updated_at=state.updated_at,
        started_at=state.started_at,
        completed_at=state.completed_at,
        object_key=state.object_key,
        size_bytes=state.size_bytes,
        content_type=state.content_type,
        error=error,
        file_deleted=state.file_deleted,
        runpod_job_id=state.runpod_job_id,
        poster_key=state.poster_key,
        version=state.version,
    )


class Queries:
    """Reads are exact even while the projector is behind: states are the rows plus the
    events they have not seen (projections.load_states)."""

    def __init__(self, engine: AsyncEngine, limits: Limits) -> None:
        self.engine = engine
        self.limits = limits

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        """The video now, or as it was at `version` (e.g. the decision a create answers)."""
        async with self.engine.connect() as conn:
            pg = await driver_connection(conn)
            if version is None:
                state = (await projections.load_states(pg, [video_id])).get(video_id)
            else:
                state = await projections.load_state_at(pg, video_id, version)
        return _view(state) if state else None

    async def videos(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage:
        """Newest first; the cursor is the last row's (created_at, id), stable under inserts.

        A status filter applies to the rows first and to the exact states after, so a page
        never shows a video in another status, but one that just reached the status can be
        missing until the projector has written it (under a second, usually milliseconds).
        """
        query = sa.select(_videos.c.created_at, _videos.c.video_id)
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
            # One snapshot for the rows and the unwritten rest: read apart, a projector batch
            # committing in between would be in neither.
            await conn.execution_options(isolation_level="REPEATABLE READ")
            keys = [(r.created_at, r.video_id) for r in await conn.execute(query)]
            pg = await driver_connection(conn)
            if not cursor:  # videos newer than any row: the first page shows them too
                keys += await projections.unprojected_new_videos(pg, user_id)
                keys = sorted(set(keys), reverse=True)[: limit + 1]
            page = keys[:limit]
            states = await projections.load_states(pg, [vid for _, vid in page])
        views = [
            _view(states[vid])
            for _, vid in page
            if vid in states and (status is None or states[vid].status is status)
        ]
        next_cursor = encode_cursor(*page[-1]) if len(keys) > limit else None
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
            usage = await projections.read_usage(await driver_connection(conn), user_id, now)
        start = usage.period_start
        return UsageView(
            active_jobs=usage.active_jobs,
            max_active_jobs=self.limits.max_active_jobs,
            used_seconds=round(usage.used_seconds, 3),
            quota_seconds=self.limits.quota_seconds,
            period_start=datetime(start.year, start.month, 1, tzinfo=now.tzinfo),
            period_end=datetime.combine(period_end(start), datetime.min.time(), now.tzinfo),
        )
