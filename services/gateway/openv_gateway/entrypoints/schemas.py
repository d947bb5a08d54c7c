"""Public request and response bodies of the v1 API (../shared/api-contract.md)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from openv_contracts.public_video import Video
from openv_contracts.video import (
    Cfg,
    NegativePrompt,
    NumFrames,
    Prompt,
    Seed,
    Side,
    Steps,
    VideoParams,
)
from openv_gateway.domain import text
from openv_gateway.domain.webhook_url import MAX_URL_LENGTH

#: Free text a client sends is refused at the door if it holds characters no human writes
#: (NUL and other controls, lone surrogates; see domain/text.py). Only here, in the public
#: API: the shared contracts stay tolerant so that events already written are always read.
_SAFE_TEXT = AfterValidator(text.checked)
_SAFE_TEXT_DOC = Field(json_schema_extra={"pattern": text.CONTROL_FREE_PATTERN})
SafeText = Annotated[str, _SAFE_TEXT, _SAFE_TEXT_DOC]
SafePrompt = Annotated[Prompt, _SAFE_TEXT, _SAFE_TEXT_DOC]
SafeNegativePrompt = Annotated[NegativePrompt, _SAFE_TEXT, _SAFE_TEXT_DOC]

EventName = Literal["queued", "started", "progress", "completed"]


def _no_duplicates(events: list[EventName]) -> list[EventName]:
    if len(set(events)) != len(events):
        raise ValueError("each event may be named once")
    return events


EventsFilter = Annotated[
    list[EventName],
    Field(min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_no_duplicates),
]


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
    webhook: Annotated[str, _SAFE_TEXT] | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="An https URL (at most 2048 characters) that is sent each of the video's "
        "changes named by `webhook_events_filter`, signed (see the API description's "
        "**Webhooks**). No user name or password, no fragment; a host that is, or resolves to, "
        "a private, loopback, link-local or metadata address is refused (422 `invalid_webhook`).",
    )
    webhook_events_filter: EventsFilter | None = Field(
        default=None,
        description="Which changes are sent (each at most once in the list): `queued` (accepted), "
        "`started` (rendering), `progress`, `completed` (any terminal state: completed, failed, "
        "cancelled, timed_out, rejected). Absent: all four. Only with `webhook`.",
    )

    def params(self, default_seed: int) -> VideoParams:
        """The model parameters the request asks for; `default_seed` if it names no seed."""
        fields = self.model_dump(exclude={"prompt", "webhook", "webhook_events_filter"})
        if self.seed is None:
            fields["seed"] = default_seed
        return VideoParams.model_validate(fields)


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
        description="invalid_parameter, invalid_webhook, unauthorized, not_found, "
        "concurrency_limit, quota_exceeded, rate_limited, conflict, payload_too_large, unavailable"
    )
    errors: list[FieldError] | None = Field(
        default=None, description="With `invalid_parameter`: what is wrong with which field."
    )
