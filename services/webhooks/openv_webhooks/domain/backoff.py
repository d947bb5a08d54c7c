"""When a failed delivery is tried again: exponential backoff with jitter, up to a give-up
time. Pure: the caller passes the random draw and the clock."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Jitter(StrEnum):
    #: Anywhere between 0 and the exponential delay (AWS "full jitter").
    FULL = "full"
    #: Half the delay fixed, the other half random (AWS "equal jitter").
    EQUAL = "equal"


@dataclass(frozen=True)
class RetrySchedule:
    base_s: float
    max_s: float
    jitter: Jitter = Jitter.EQUAL

    def ceiling_s(self, failed_attempts: int) -> float:
        """The delay before jitter after `failed_attempts` (>= 1) failures: base doubling,
        capped at `max_s`."""
        exponent = min(max(failed_attempts - 1, 0), 62)
        return float(min(self.max_s, self.base_s * 2.0**exponent))

    def delay_s(self, failed_attempts: int, draw: float) -> float:
        """The wait after `failed_attempts` failures, `draw` uniform in [0, 1)."""
        ceiling = self.ceiling_s(failed_attempts)
        draw = min(max(draw, 0.0), 1.0)
        if self.jitter is Jitter.FULL:
            return ceiling * draw
        return ceiling / 2 + ceiling / 2 * draw

    def next_attempt(
        self, failed_attempts: int, now: datetime, give_up_at: datetime, draw: float
    ) -> datetime | None:
        """When to try again, or None: the give-up time is reached (or would be before)."""
        at = now + timedelta(seconds=self.delay_s(failed_attempts, draw))
        return None if at >= give_up_at else at
