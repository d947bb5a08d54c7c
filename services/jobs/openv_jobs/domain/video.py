"""The video aggregate: its state and how events evolve it. Pure: no I/O, no clock."""

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from uuid import UUID

from openv_contracts.base import Message
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoCompleted,
    VideoDeleted,
    VideoFailed,
    VideoFileDeleted,
    VideoPosterAdded,
    VideoProgressed,
    VideoRejected,
    VideoRunning,
    VideoSubmitted,
    VideoTimedOut,
)
from openv_contracts.video import ACTIVE_STATUSES, VideoParams, VideoStatus

# Forward-only order: a status may only move to a higher rank (deleted follows anything).
_RANK: dict[VideoStatus, int] = {
    VideoStatus.PENDING: 0,
    VideoStatus.QUEUED: 1,
    VideoStatus.SUBMITTED: 2,
    VideoStatus.RUNNING: 3,
    VideoStatus.COMPLETED: 4,
    VideoStatus.FAILED: 4,
    VideoStatus.CANCELLED: 4,
    VideoStatus.TIMED_OUT: 4,
    VideoStatus.REJECTED: 4,
    VideoStatus.DELETED: 5,
}


def can_move(current: VideoStatus, target: VideoStatus) -> bool:
    return _RANK[target] > _RANK[current]


@dataclass(frozen=True)
class VideoState:
    video_id: UUID
    user_id: str
    status: VideoStatus
    prompt: str
    params: VideoParams
    duration_seconds: float
    created_at: datetime
    updated_at: datetime
    version: int
    object_prefix: str = ""
    charged_seconds: float = 0.0
    progress: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    runpod_job_id: str | None = None
    object_key: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    file_deleted: bool = False
    poster_key: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


# Every field's default, for states built without __init__ (start, _updated).
_START_DEFAULTS = {f.name: f.default for f in fields(VideoState) if f.default is not MISSING}


class UnexpectedEvent(ValueError):
    """An event that cannot apply to the state it was given: the log is inconsistent."""


def start(event: Message, user_id: str, at: datetime) -> VideoState:
    """The state created by a stream's first event."""
    if isinstance(event, VideoAccepted):
        status, error_code, error_message = VideoStatus.QUEUED, None, None
        prefix, charged = event.object_prefix, event.charged_seconds
    elif isinstance(event, VideoRejected):
        status, error_code, error_message = VideoStatus.REJECTED, event.code, event.message
        prefix, charged = "", 0.0
    else:
        raise UnexpectedEvent(f"a video stream cannot start with {event.TYPE}")
    # Built like _updated below: a frozen dataclass's __init__ sets each of its 21 fields
    # through object.__setattr__, a sixth of the decision of a request.
    new = object.__new__(VideoState)
    new.__dict__.update(
        _START_DEFAULTS,
        video_id=event.video_id,
        user_id=user_id,
        status=status,
        prompt=event.prompt,
        params=event.params,
        duration_seconds=event.params.duration_seconds,
        created_at=at,
        updated_at=at,
        version=1,
        object_prefix=prefix,
        charged_seconds=charged,
        error_code=error_code,
        error_message=error_message,
        progress=0 if status is VideoStatus.QUEUED else None,
    )
    return new


def _updated(state: VideoState, **changes: object) -> VideoState:
    """`dataclasses.replace` without re-running __init__: the fold's hot path (rebuilds)."""
    new = object.__new__(VideoState)
    new.__dict__.update(state.__dict__, **changes)
    return new


def evolve(state: VideoState, event: Message, at: datetime) -> VideoState:
    """Apply one recorded event. Decisions were made before recording, so this never refuses
    a legal event; it raises only when the log itself is inconsistent."""
    changes: dict[str, object]
    match event:
        case VideoSubmitted():
            changes = {"status": VideoStatus.SUBMITTED, "runpod_job_id": event.runpod_job_id}
        case VideoRunning():
            changes = {
                "status": VideoStatus.RUNNING,
                "started_at": state.started_at or at,
                "progress": event.progress if event.progress is not None else state.progress,
            }
        case VideoProgressed():
            changes = {"progress": event.progress}
        case VideoCompleted():
            changes = {
                "status": VideoStatus.COMPLETED,
                "progress": 100,
                "completed_at": at,
                "object_key": event.object_key,
                "size_bytes": event.size_bytes,
                "content_type": event.content_type,
            }
        case VideoFailed():
            changes = {
                "status": VideoStatus.FAILED,
                "completed_at": at,
                "error_code": event.code,
                "error_message": event.message,
            }
        case VideoCancelled():
            changes = {"status": VideoStatus.CANCELLED, "completed_at": at}
        case VideoTimedOut():
            changes = {
                "status": VideoStatus.TIMED_OUT,
                "completed_at": at,
                "error_code": event.code,
                "error_message": event.reason,
            }
        case VideoDeleted():
            changes = {"status": VideoStatus.DELETED}
        case VideoFileDeleted():
            changes = {"file_deleted": True}
        case VideoPosterAdded():
            changes = {"poster_key": event.object_key}
        case _:
            raise UnexpectedEvent(f"{event.TYPE} cannot follow the start of a stream")
    return _updated(state, version=state.version + 1, updated_at=at, **changes)
