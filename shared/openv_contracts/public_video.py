"""The video resource as the public REST API shows it, and how a jobs-service view becomes one.

Shared because two services render it: the gateway answers with it, and the webhooks service
sends it to client apps (a webhook's body is the resource as the API shows it, plus the event).
"""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus

#: A completed video's presigned links: the file's URL and expiry, and the poster's URL.
Links = tuple[str | None, datetime | None, str | None]
NO_LINKS: Links = (None, None, None)


class VideoParamsOut(BaseModel):
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    seed: int
    steps: int
    cfg: float


class VideoFile(BaseModel):
    url: str = Field(description="Presigned GET URL of the MP4.")
    expires_at: datetime = Field(description="When `url` stops working; GET the video again.")
    content_type: str
    size_bytes: int | None


class VideoError(BaseModel):
    code: str = Field(
        description="concurrency_limit, quota_exceeded, runpod_rejected, runpod_failed, "
        "worker_failed, output_missing, invalid_output, import_failed, timed_out"
    )
    message: str


class Video(BaseModel):
    """A requested video. `pending`: received, not yet decided by the jobs service."""

    id: UUID
    status: VideoStatus
    progress: int | None = Field(ge=0, le=100)
    queue_position: int | None
    prompt: str
    params: VideoParamsOut
    duration_seconds: float = Field(description="num_frames / fps")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    video: VideoFile | None = Field(description="The file, once completed (until deleted).")
    poster_url: str | None = Field(
        default=None,
        description="Presigned GET URL of a still from the video (a JPEG), valid as long as "
        "`video.url` (until `video.expires_at`). Null until the poster is extracted, shortly "
        "after completion, or if the file could not be decoded; null once deleted.",
    )
    error: VideoError | None
    file_deleted: bool = Field(description="Only meaningful once status is `deleted`.")


def present_with(view: VideoView, presigned: Links) -> Video:
    """The public resource of `view`, with the links presigned for it (`NO_LINKS`: none)."""
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
