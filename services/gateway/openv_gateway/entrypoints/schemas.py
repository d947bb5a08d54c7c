"""Public request and response bodies of the v1 API (../shared/api-contract.md)."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from openv_shared.contracts.video import (
    Cfg,
    NegativePrompt,
    NumFrames,
    Prompt,
    Seed,
    Side,
    Steps,
    VideoStatus,
)


class CreateVideoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: Prompt
    negative_prompt: NegativePrompt = ""
    width: Side = 848
    height: Side = 480
    num_frames: NumFrames = 31
    seed: Seed | None = None
    steps: Steps = 40
    cfg: Cfg = 6.0


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
    url: str
    expires_at: datetime
    content_type: str
    size_bytes: int | None


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    id: UUID
    status: VideoStatus
    progress: int | None
    queue_position: int | None
    prompt: str
    params: VideoParamsOut
    duration_seconds: float
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    video: VideoFile | None
    error: VideoError | None
    file_deleted: bool


class VideoList(BaseModel):
    data: list[Video]
    next_cursor: str | None


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details with OpenV's machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
