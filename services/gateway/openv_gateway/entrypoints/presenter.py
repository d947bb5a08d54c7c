"""Turn the jobs service's view of a video (or a pending request) into the public resource."""

from datetime import datetime

from openv_contracts.queries import EventPage, UsageView, VideoView
from openv_contracts.video import VideoStatus
from openv_gateway.adapters.playback import Playback
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.entrypoints.schemas import (
    Usage,
    Video,
    VideoError,
    VideoEvent,
    VideoEventList,
    VideoFile,
    VideoParamsOut,
)

#: A completed video's presigned links: the file's URL and expiry, and the poster's URL.
Links = tuple[str | None, datetime | None, str | None]
NO_LINKS: Links = (None, None, None)


def links(view: VideoView, playback: Playback) -> Links:
    """The presigned URLs a video's answer carries (none unless completed)."""
    if view.status is not VideoStatus.COMPLETED:
        return NO_LINKS
    poster_url = playback.url(view.poster_key)[0] if view.poster_key else None
    if not view.object_key:
        return None, None, poster_url
    url, expires_at = playback.url(view.object_key)
    return url, expires_at, poster_url


def present(view: VideoView, playback: Playback) -> Video:
    return present_with(view, links(view, playback))


def present_with(view: VideoView, presigned: Links) -> Video:
    url, expires_at, poster_url = presigned
    file = None
    if url is not None and expires_at is not None:
        file = VideoFile(
            url=url,
            expires_at=expires_at,
            content_type=view.content_type or "video/mp4",
            size_bytes=view.size_bytes,
        )
    return Video(
        id=view.id,
        status=view.status,
        progress=view.progress,
        queue_position=None,
        prompt=view.prompt,
        params=VideoParamsOut.model_validate(view.params.model_dump()),
        duration_seconds=round(view.duration_seconds, 3),
        created_at=view.created_at,
        updated_at=view.updated_at,
        started_at=view.started_at,
        completed_at=view.completed_at,
        video=file,
        poster_url=poster_url,
        error=VideoError(code=view.error.code, message=view.error.message) if view.error else None,
        file_deleted=view.file_deleted,
    )


def present_pending(pending: PendingVideo) -> Video:
    return Video(
        id=pending.video_id,
        status=VideoStatus.PENDING,
        progress=None,
        queue_position=None,
        prompt=pending.prompt,
        params=VideoParamsOut.model_validate(pending.params.model_dump()),
        duration_seconds=round(pending.params.duration_seconds, 3),
        created_at=pending.received_at,
        updated_at=pending.received_at,
        video=None,
        error=None,
        file_deleted=False,
    )


def present_events(page: EventPage) -> VideoEventList:
    return VideoEventList(
        data=[
            VideoEvent(type=e.type, occurred_at=e.occurred_at, version=e.version, data=e.data)
            for e in page.data
        ]
    )


def present_usage(usage: UsageView) -> Usage:
    return Usage.model_validate(usage.model_dump())
