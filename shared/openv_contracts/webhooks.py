"""Where a client app wants to hear about its video: a webhook named on create.

Carried by `RequestVideo` into the video's decision (`VideoAccepted` / `VideoRejected`), so the
webhooks service reads the target from the event log like everything else it needs.
"""

from datetime import datetime
from enum import StrEnum
from typing import Literal

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


# The webhooks service's internal API (read by the gateway over HTTP, like queries.py's).


class WebhookSecretView(BaseModel):
    """A user's signing secret (`whsec_` + base64 of 32 random bytes)."""

    secret: str
    created_at: datetime
    #: Until when the secret it replaced keeps signing alongside it (None: no rotation pending).
    previous_expires_at: datetime | None = None


class WebhookAttemptView(BaseModel):
    """One try at sending a delivery."""

    at: datetime
    #: The receiver's HTTP status; None when no answer came (timeout, refused address, ...).
    status_code: int | None
    latency_ms: int
    #: Why the try did not count as delivered (None when it did).
    error: str | None


class WebhookDeliveryView(BaseModel):
    """One event sent (or being sent) to a video's webhook, with every attempt."""

    #: The `webhook-id` header: the same on every attempt, so receivers can drop duplicates.
    id: str
    event: WebhookEvent
    #: The video event it tells of (its version in the video's stream).
    version: int
    url: str
    #: pending (being tried), delivered (a 2xx answer) or failed (no 2xx within 24 h).
    state: Literal["pending", "delivered", "failed"]
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[WebhookAttemptView]


class WebhookDeliveryPage(BaseModel):
    data: list[WebhookDeliveryView]


class WebhookReplayed(BaseModel):
    """How many failed deliveries a replay put back in line."""

    replayed: int
