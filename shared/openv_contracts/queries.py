"""Shapes of the jobs service's internal query API, read by the gateway over HTTP."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from openv_contracts.envelope import Envelope
from openv_contracts.events import VideoAccepted, VideoRejected
from openv_contracts.video import VideoParams, VideoStatus

_DECISIONS = frozenset({VideoAccepted.TYPE, VideoRejected.TYPE})


class VideoErrorView(BaseModel):
    code: str
    message: str
    #: When trying again can succeed, if the refusal says (`quota_exceeded`: the quota's
    #: reset). Optional: views of refusals recorded before it was said have none.
    retry_at: datetime | None = None


class VideoView(BaseModel):
    """One row of the `videos` projection."""

    id: UUID
    user_id: str
    status: VideoStatus
    progress: int | None
    prompt: str
    params: VideoParams
    duration_seconds: float
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    object_key: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    error: VideoErrorView | None = None
    file_deleted: bool = False
    runpod_job_id: str | None = None
    #: The poster's object key (a JPEG still), once storage has extracted it. Optional: older
    #: jobs services send none.
    poster_key: str | None = None
    version: int


def decided_view(envelope: Envelope) -> VideoView | None:
    """The video as the decision on its request leaves it (its stream's first event,
    `VideoAccepted` or `VideoRejected`): exactly what the jobs service serves at version 1,
    so a gateway that reads the event from the video-events topic need not ask for it.
    None for any other event. (tests/unit/test_contracts.py holds it to the jobs service's
    own fold.)"""
    if envelope.stream_version != 1 or envelope.type not in _DECISIONS:
        return None
    message = envelope.message()
    error = None
    if isinstance(message, VideoAccepted):
        status, progress = VideoStatus.QUEUED, 0
    elif isinstance(message, VideoRejected):
        status, progress = VideoStatus.REJECTED, None
        error = VideoErrorView(
            code=message.code, message=message.message, retry_at=message.retry_at
        )
    else:
        return None
    return VideoView(
        id=message.video_id,
        user_id=envelope.user_id or "",
        status=status,
        progress=progress,
        prompt=message.prompt,
        params=message.params,
        duration_seconds=message.params.duration_seconds,
        # A decision is stamped with the time it was recorded, which the view calls created.
        created_at=envelope.occurred_at,
        updated_at=envelope.occurred_at,
        error=error,
        version=1,
    )


class VideoPage(BaseModel):
    data: list[VideoView]
    next_cursor: str | None


class EventView(BaseModel):
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    version: int


class EventPage(BaseModel):
    data: list[EventView]


class UsageView(BaseModel):
    active_jobs: int
    max_active_jobs: int
    used_seconds: float
    quota_seconds: float
    period_start: datetime
    period_end: datetime


class JobsUnavailable(Exception):
    """The jobs service's query API did not answer usefully; the caller must not guess.

    Part of the API's contract, so a use case can tell it apart without importing the client
    (`openv_infra.jobs_api`, which raises it)."""
