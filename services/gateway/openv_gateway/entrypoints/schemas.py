"""Public request and response bodies of the v1 API (../shared/api-contract.md)."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from openv_contracts.video import (
    Cfg,
    NegativePrompt,
    NumFrames,
    Prompt,
    Seed,
    Side,
    Steps,
    VideoParams,
    VideoStatus,
)
from openv_gateway.domain import text

#: Free text a client sends is refused at the door if it holds characters no human writes
#: (NUL and other controls, lone surrogates; see domain/text.py). Only here, in the public
#: API: the shared contracts stay tolerant so that events already written are always read.
_SAFE_TEXT = AfterValidator(text.checked)
_SAFE_TEXT_DOC = Field(json_schema_extra={"pattern": text.CONTROL_FREE_PATTERN})
SafeText = Annotated[str, _SAFE_TEXT, _SAFE_TEXT_DOC]
SafePrompt = Annotated[Prompt, _SAFE_TEXT, _SAFE_TEXT_DOC]
SafeNegativePrompt = Annotated[NegativePrompt, _SAFE_TEXT, _SAFE_TEXT_DOC]


class CreateVideoRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"prompt": "a red fox running through snow", "width": 384, "height": 384}]
        },
    )

    prompt: SafePrompt = Field(description=f"What the video shows (1-500 characters). {text.RULE}")
    negative_prompt: SafeNegativePrompt = Field(
        default="", description=f"What to avoid. {text.RULE}"
    )
    width: Side = Field(default=848, description="384-848, a multiple of 16.")
    height: Side = Field(default=480, description="384-848, a multiple of 16.")
    num_frames: NumFrames = Field(
        default=31, description="7-127 with (num_frames - 1) % 6 == 0; at 24 fps."
    )
    seed: Seed | None = Field(
        default=None,
        description="0..2^31-1. Absent: random, or derived from the Idempotency-Key if one "
        "is given (so a retry has the same body).",
    )
    steps: Steps = Field(default=40, description="Inference steps, 10-65.")
    cfg: Cfg = Field(default=6.0, description="Guidance scale, 1-20.")

    def params(self, default_seed: int) -> VideoParams:
        """The model parameters the request asks for; `default_seed` if it names no seed."""
        fields = self.model_dump(exclude={"prompt"})
        if self.seed is None:
            fields["seed"] = default_seed
        return VideoParams.model_validate(fields)


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


class VideoList(BaseModel):
    data: list[Video]
    next_cursor: str | None = Field(
        description="Opaque; pass as `cursor` for the next (older) page. Null on the last page."
    )


class VideoEvent(BaseModel):
    type: str = Field(description="e.g. VideoAccepted, VideoRunning, VideoCompleted")
    occurred_at: datetime
    version: int = Field(description="Position in the video's history, from 1.")
    data: dict[str, Any]


class VideoEventList(BaseModel):
    data: list[VideoEvent]


class Usage(BaseModel):
    active_jobs: int
    max_active_jobs: int
    used_seconds: float
    quota_seconds: float
    period_start: datetime
    period_end: datetime


class StreamToken(BaseModel):
    token: str = Field(
        description="Opens this video's stream (EventSource's reconnects too) until `expires_at`."
    )
    expires_at: datetime = Field(description="When the token stops opening the stream.")
    url: str = Field(
        description="The stream's path with the token (`/v1/videos/{id}/stream?stream_token=...`"
        "), for `new EventSource(base + url)`."
    )


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details with OpenV's machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(
        description="invalid_parameter, unauthorized, not_found, concurrency_limit, "
        "quota_exceeded, rate_limited, conflict, payload_too_large, unavailable"
    )
    errors: list[FieldError] | None = Field(
        default=None, description="With `invalid_parameter`: what is wrong with which field."
    )
