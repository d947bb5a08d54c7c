"""What each video event tells a reader of the `openv.video-events` topic about the video: the
view (`queries.VideoView`, exactly what the jobs service serves) after the event, given the
view before it. A gateway folds the topic with it and answers reads without asking the jobs
service. tests/unit/test_video_views.py holds it to the jobs service's own fold, event by
event, so the two cannot drift apart."""

from datetime import datetime
from typing import Any

from openv_contracts.envelope import Envelope
from openv_contracts.events import (
    VideoCancelled,
    VideoCompleted,
    VideoDeleted,
    VideoFailed,
    VideoFileDeleted,
    VideoPosterAdded,
    VideoProgressed,
    VideoRunning,
    VideoSubmitted,
    VideoTimedOut,
)
from openv_contracts.queries import VideoErrorView, VideoView, decided_view
from openv_contracts.video import VideoStatus


def next_view(view: VideoView | None, envelope: Envelope) -> VideoView | None:
    """The video after `envelope` when it is the event that follows `view` (with no view: its
    stream's first event, the decision). None when it cannot be told from these two: an event
    `view` already holds, one after a gap, or a type this release does not know; the reader
    then asks the jobs service."""
    version = envelope.stream_version
    if view is None:
        return decided_view(envelope) if version == 1 else None
    if version != view.version + 1:
        return None
    try:
        message = envelope.message()
    except (ValueError, LookupError):  # a newer release's event
        return None
    if getattr(message, "video_id", None) != view.id:
        return None
    changes = _changes(view, message, envelope)
    if changes is None:
        return None
    return view.model_copy(
        update={**changes, "version": version, "updated_at": envelope.occurred_at}
    )


def _changes(view: VideoView, message: Any, envelope: Envelope) -> dict[str, Any] | None:
    at = envelope.occurred_at
    match message:
        case VideoSubmitted():
            return {"status": VideoStatus.SUBMITTED, "runpod_job_id": message.runpod_job_id}
        case VideoRunning():
            return {
                "status": VideoStatus.RUNNING,
                "started_at": view.started_at or at,
                "progress": message.progress if message.progress is not None else view.progress,
            }
        case VideoProgressed():
            return {"progress": message.progress}
        case VideoCompleted():
            return {
                "status": VideoStatus.COMPLETED,
                "progress": 100,
                "completed_at": at,
                "object_key": message.object_key,
                "size_bytes": message.size_bytes,
                "content_type": message.content_type,
            }
        case VideoFailed():
            return _ended(at, VideoStatus.FAILED, message.code, message.message)
        case VideoCancelled():
            return {"status": VideoStatus.CANCELLED, "completed_at": at}
        case VideoTimedOut():
            return _ended(at, VideoStatus.TIMED_OUT, message.code, message.reason)
        case VideoDeleted():
            return {"status": VideoStatus.DELETED}
        case VideoFileDeleted():
            return {"file_deleted": True}
        case VideoPosterAdded():
            return {"poster_key": message.object_key}
    return None


def _ended(at: datetime, status: VideoStatus, code: str, text: str) -> dict[str, Any]:
    return {"status": status, "completed_at": at, "error": VideoErrorView(code=code, message=text)}
