"""The video's public vocabulary: statuses, generation parameters, error codes."""

from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

FPS: Final = 24


class VideoStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    DELETED = "deleted"


TERMINAL_STATUSES: Final = frozenset(
    {
        VideoStatus.COMPLETED,
        VideoStatus.FAILED,
        VideoStatus.CANCELLED,
        VideoStatus.TIMED_OUT,
        VideoStatus.REJECTED,
        VideoStatus.DELETED,
    }
)
ACTIVE_STATUSES: Final = frozenset({VideoStatus.QUEUED, VideoStatus.SUBMITTED, VideoStatus.RUNNING})


class ErrorCode(StrEnum):
    """Machine-readable reasons carried by rejected/failed videos."""

    CONCURRENCY_LIMIT = "concurrency_limit"
    QUOTA_EXCEEDED = "quota_exceeded"
    RUNPOD_REJECTED = "runpod_rejected"
    RUNPOD_FAILED = "runpod_failed"
    WORKER_FAILED = "worker_failed"
    OUTPUT_MISSING = "output_missing"
    #: The worker returned something unusable as a result (e.g. a result URL that is not
    #: http(s), holds control characters, or is longer than a fact may carry).
    INVALID_OUTPUT = "invalid_output"
    IMPORT_FAILED = "import_failed"
    TIMED_OUT = "timed_out"
    #: The job ran past its execution timeout (RunPod may report it as FAILED or TIMED_OUT).
    EXECUTION_TIMEOUT = "execution_timeout"


def _frames_rule(v: int) -> int:
    if (v - 1) % 6:
        raise ValueError("must satisfy (num_frames - 1) % 6 == 0, e.g. 7, 13, 31, 127")
    return v


# Bounds of the reference worker; the gateway validates requests with these same types.
Side = Annotated[int, Field(ge=384, le=848, multiple_of=16)]
NumFrames = Annotated[int, Field(ge=7, le=127), AfterValidator(_frames_rule)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
Steps = Annotated[int, Field(ge=10, le=65)]
Cfg = Annotated[float, Field(ge=1, le=20)]
Prompt = Annotated[str, Field(min_length=1, max_length=500)]
NegativePrompt = Annotated[str, Field(max_length=500)]


class VideoParams(BaseModel):
    """Model parameters (bounds of the reference Mochi-1 worker); the seed is always resolved.

    Carried by commands and events, so unknown fields are ignored like every message's: a
    newer release's parameter must not make an older consumer dead-letter the event during a
    rolling deploy (the public API's request body stays strict)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    negative_prompt: NegativePrompt = ""
    width: Side = 848
    height: Side = 480
    num_frames: NumFrames = 31
    fps: int = FPS
    seed: Seed
    steps: Steps = 40
    cfg: Cfg = 6.0

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.fps
