"""A delivery's states and what one attempt does to it. Pure.

pending -> delivered (a 2xx answer) | pending again (later, by the retry schedule) | failed
(no 2xx by the give-up time). A replay puts a failed delivery back to pending with a fresh
window; its `webhook-id` stays the same.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from openv_webhooks.domain.backoff import RetrySchedule


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def webhook_id(event_id: UUID) -> str:
    """The `webhook-id` header of the delivery of video event `event_id`."""
    return "msg_" + event_id.hex


@dataclass(frozen=True)
class AttemptResult:
    """What one try got: the receiver's status (None: no answer) and why it did not count."""

    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def attempt_error(status_code: int) -> str | None:
    """Why an answer with `status_code` is not a delivery (None: it is)."""
    if 200 <= status_code < 300:
        return None
    if 300 <= status_code < 400:
        return f"answered {status_code}: redirects are not followed"
    return f"answered {status_code}"


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None


def after_attempt(
    result: AttemptResult,
    failed_before: int,
    give_up_at: datetime,
    schedule: RetrySchedule,
    draw: float,
) -> Outcome:
    """The delivery after `result`, given the failed attempts before it."""
    if result.delivered:
        return Outcome(DeliveryState.DELIVERED, None)
    at = schedule.next_attempt(failed_before + 1, result.at, give_up_at, draw)
    if at is None:
        return Outcome(DeliveryState.FAILED, None)
    return Outcome(DeliveryState.PENDING, at)
