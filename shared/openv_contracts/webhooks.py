"""Where a client app wants to hear about its video: a webhook named on create.

Carried by `RequestVideo` into the video's decision (`VideoAccepted` / `VideoRejected`), so the
webhooks service reads the target from the event log like everything else it needs.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class WebhookEvent(StrEnum):
    """What a webhook can be sent for (the create request's `webhook_events_filter`)."""

    #: The request was accepted and waits for a GPU.
    QUEUED = "queued"
    #: A worker started rendering it.
    STARTED = "started"
    #: The worker reported progress.
    PROGRESS = "progress"
    #: It reached a terminal state: completed, failed, cancelled, timed out or rejected.
    COMPLETED = "completed"


#: Sent for when the create request names no filter (like Replicate: every event).
ALL_EVENTS: frozenset[WebhookEvent] = frozenset(WebhookEvent)


class WebhookTarget(BaseModel):
    """A validated webhook: the gateway has checked the URL's form and address rules."""

    model_config = ConfigDict(frozen=True)

    url: str
    events: frozenset[WebhookEvent] = ALL_EVENTS
