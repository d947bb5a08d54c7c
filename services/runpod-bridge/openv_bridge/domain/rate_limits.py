"""RunPod's per-route request limits, counted on our side. Pure: the caller passes the time.

RunPod limits each endpoint per route: `/run` 1000 requests per 10 s and 200 at once, `/status`
2000 per 10 s, `/cancel` 100 per 10 s and 20 at once. Over it RunPod answers 429 with no
`Retry-After`, and counts per 10 s window, so a retry inside the same window fails again.
"""

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteLimit:
    """At most `per_window` requests started in any `window_s`, `concurrent` in flight."""

    per_window: int
    window_s: float
    concurrent: int | None = None


class SlidingWindow:
    """Hands out start times so that no `window_s`-long interval holds more than `limit`
    starts. Any such schedule also stays within RunPod's fixed windows: a fixed window is one
    of those intervals."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a window needs limit >= 1 and window_s > 0")
        self.window_s = window_s
        # Only the `limit`-th most recent start decides the next one: keep just those.
        self._starts: deque[float] = deque(maxlen=limit)
        self._held_until = float("-inf")

    def _start(self, now: float) -> float:
        start = max(now, self._held_until)
        if len(self._starts) == self._starts.maxlen:
            start = max(start, self._starts[0] + self.window_s)
        return start

    def wait_s(self, now: float) -> float:
        """How long a start booked at `now` would wait (nothing is booked)."""
        return self._start(now) - now

    def reserve(self, now: float) -> float:
        """Book the earliest start at or after `now`; returns how long to wait for it."""
        start = self._start(now)
        self._starts.append(start)
        return start - now

    def hold(self, until: float) -> None:
        """No start before `until` (RunPod said 429: its window is full whatever we counted)."""
        self._held_until = max(self._held_until, until)


def throttled_hold(
    window_s: float, jitter_s: float, rand: float, retry_after_s: float = 0
) -> float:
    """How long a route rests after a 429: past the whole window RunPod counts in (its window
    may have begun just now), plus jitter so several bridges do not come back together, and at
    least any `Retry-After` given. `rand` is uniform in [0, 1)."""
    return max(window_s + jitter_s * rand, retry_after_s)
