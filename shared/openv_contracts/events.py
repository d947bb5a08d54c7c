"""Events of a video's life, written only by the jobs service. Topic `openv.video-events`.

Each video is one stream (`video_stream_id`); the relay publishes them keyed by video id.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from openv_contracts.base import Message
from openv_contracts.upcasting import upcaster
from openv_contracts.video import ErrorCode, VideoParams, VideoStatus
from openv_contracts.webhooks import WebhookTarget

_VIDEO_STREAM = "video-"


def video_stream_id(video_id: UUID) -> str:
    return f"{_VIDEO_STREAM}{video_id}"


def stream_video_id(stream_id: str | None) -> UUID | None:
    """The video a stream id names (`video_stream_id`'s inverse); None for any other stream."""
    if not stream_id or not stream_id.startswith(_VIDEO_STREAM):
        return None
    try:
        return UUID(stream_id.removeprefix(_VIDEO_STREAM))
    except ValueError:
        return None


class VideoAccepted(Message):
    """The request passed every limit and is queued for RunPod (status `queued`).

    v2 records the quota charge itself, so a refund returns exactly what was charged even if
    the charging rule changes later. v1 events are upcast: the charge was the duration.
    """

    TYPE = "VideoAccepted"
    VERSION = 2

    video_id: UUID
    prompt: str
    params: VideoParams
    duration_seconds: float
    charged_seconds: float
    object_prefix: str
    #: The request's webhook, if it named one. Optional: absent before webhooks existed.
    webhook: WebhookTarget | None = None


@upcaster(VideoAccepted.TYPE, 1)
def _accepted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "charged_seconds": data["duration_seconds"]}


class VideoRejected(Message):
    """The request was refused by a limit (status `rejected`).

    v2 says when trying again can succeed (`retry_at`; for `quota_exceeded` the start of the
    next quota period, so no reader repeats the jobs service's period rule); None where no
    time is known (`concurrency_limit`: when a video in progress ends). v1 events are upcast
    with None.
    """

    TYPE = "VideoRejected"
    VERSION = 2

    video_id: UUID
    prompt: str
    params: VideoParams
    code: str
    message: str
    retry_at: datetime | None
    #: The request's webhook, if it named one (told of the refusal as `completed`).
    webhook: WebhookTarget | None = None


@upcaster(VideoRejected.TYPE, 1)
def _rejected_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "retry_at": None}


class VideoSubmitted(Message):
    """RunPod holds the job (IN_QUEUE)."""

    TYPE = "VideoSubmitted"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str


class VideoRunning(Message):
    TYPE = "VideoRunning"
    VERSION = 1

    video_id: UUID
    progress: int | None = Field(default=None, ge=0, le=100)


class VideoProgressed(Message):
    TYPE = "VideoProgressed"
    VERSION = 1

    video_id: UUID
    progress: int = Field(ge=0, le=100)


class VideoCompleted(Message):
    TYPE = "VideoCompleted"
    VERSION = 1

    video_id: UUID
    object_key: str
    size_bytes: int = Field(ge=1)
    content_type: str = "video/mp4"


class VideoFailed(Message):
    TYPE = "VideoFailed"
    VERSION = 1

    video_id: UUID
    code: str
    message: str


class VideoCancelled(Message):
    TYPE = "VideoCancelled"
    VERSION = 1

    video_id: UUID
    previous_status: VideoStatus
    runpod_job_id: str | None = None


class VideoTimedOut(Message):
    TYPE = "VideoTimedOut"
    VERSION = 1

    video_id: UUID
    reason: str
    #: The public error code (`timed_out` or `execution_timeout`); older events have none
    #: and fold as `timed_out`.
    code: str = ErrorCode.TIMED_OUT.value


class VideoDeleted(Message):
    """Marked deleted; carries what the bridge (cancel) and storage (remove) need."""

    TYPE = "VideoDeleted"
    VERSION = 1

    video_id: UUID
    previous_status: VideoStatus
    object_prefix: str
    runpod_job_id: str | None = None


class VideoFileDeleted(Message):
    TYPE = "VideoFileDeleted"
    VERSION = 1

    video_id: UUID
    objects_removed: int = Field(ge=0)


class VideoPosterAdded(Message):
    """A completed video got its poster (a still in the bucket, under the video's prefix)."""

    TYPE = "VideoPosterAdded"
    VERSION = 1

    video_id: UUID
    object_key: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
