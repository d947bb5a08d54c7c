"""A user's limits and usage: active videos and seconds of video charged this calendar month."""

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from openv_contracts.base import Message
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoCompleted,
    VideoDeleted,
    VideoFailed,
    VideoTimedOut,
)
from openv_contracts.video import ACTIVE_STATUSES, VideoStatus
from openv_jobs.domain.video import VideoState


@dataclass(frozen=True)
class Limits:
    max_active_jobs: int = 3
    quota_seconds: float = 600.0


def period_of(at: datetime) -> date:
    """The calendar month (UTC) `at` falls in, as its first day."""
    if at.tzinfo is not UTC:  # stored times come back in UTC already: skip the conversion
        at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def period_end(start: date) -> date:
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def quota_resets_at(start: date) -> datetime:
    """When the quota of the period that began on `start` starts afresh (UTC midnight)."""
    end = period_end(start)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


@dataclass(frozen=True)
class Usage:
    user_id: str
    active_jobs: int
    period_start: date
    used_seconds: float

    def in_period(self, period: date) -> "Usage":
        """The same usage seen from `period`: a new month starts with nothing charged."""
        if period == self.period_start:
            return self
        return replace(self, period_start=period, used_seconds=0.0)


# Refund when the user got nothing: failed, timed out, or stopped before it ran.
_NOT_YET_RUN = frozenset({VideoStatus.QUEUED, VideoStatus.SUBMITTED})


def apply(usage: Usage, before: VideoState | None, event: Message, at: datetime) -> Usage:
    """Usage after `event` was recorded for the video whose state was `before`.

    Events that change nothing return `usage` as it is (readers apply the current period).
    """
    # Usage(...) rather than dataclasses.replace: this runs for every event of a rebuild.
    if isinstance(event, VideoAccepted):
        usage = usage.in_period(period_of(at))
        return Usage(
            usage.user_id,
            usage.active_jobs + 1,
            usage.period_start,
            usage.used_seconds + event.charged_seconds,
        )
    if before is None or before.status not in ACTIVE_STATUSES or not _leaves_active(event):
        return usage
    usage = usage.in_period(period_of(at))
    refund = isinstance(event, VideoFailed | VideoTimedOut) or (
        isinstance(event, VideoCancelled | VideoDeleted) and before.status in _NOT_YET_RUN
    )
    seconds = usage.used_seconds
    if refund and period_of(before.created_at) == usage.period_start:
        seconds = max(0.0, seconds - before.charged_seconds)
    return Usage(usage.user_id, max(0, usage.active_jobs - 1), usage.period_start, seconds)


def _leaves_active(event: Message) -> bool:
    return isinstance(
        event, VideoCompleted | VideoFailed | VideoTimedOut | VideoCancelled | VideoDeleted
    )
