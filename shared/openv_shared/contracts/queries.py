"""Shapes of the jobs service's internal query API, read by the gateway over HTTP."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from openv_shared.contracts.video import VideoParams, VideoStatus


class VideoErrorView(BaseModel):
    code: str
    message: str


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
    version: int


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
