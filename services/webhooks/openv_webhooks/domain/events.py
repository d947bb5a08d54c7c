"""Which webhook event (if any) a video event is, for a client app: pure."""

from typing import Final

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus
from openv_contracts.webhooks import WebhookEvent

#: Event types that end a video (or refuse it): told as `completed`.
_TERMINAL: Final = frozenset(
    {"VideoCompleted", "VideoFailed", "VideoCancelled", "VideoTimedOut", "VideoRejected"}
)


def webhook_event(
    event_type: str, before: VideoView | None, after: VideoView
) -> WebhookEvent | None:
    """The webhook event of `event_type`, which took the video from `before` to `after`.

    A `VideoRunning` starts the video unless it was already running; while running, one with
    a new progress is progress (and one repeating it nothing). Submitted, deleted, posters and
    file deletions are not told."""
    if event_type == "VideoAccepted":
        return WebhookEvent.QUEUED
    if event_type in _TERMINAL:
        return WebhookEvent.COMPLETED
    if event_type == "VideoProgressed":
        return WebhookEvent.PROGRESS
    if event_type == "VideoRunning":
        if before is None or before.status is not VideoStatus.RUNNING:
            return WebhookEvent.STARTED
        if after.progress != before.progress:
            return WebhookEvent.PROGRESS
    return None


def webhook_type(event: WebhookEvent) -> str:
    """The body's `type`: `video.queued`, `video.started`, ..."""
    return f"video.{event.value}"
