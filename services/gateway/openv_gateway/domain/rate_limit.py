"""Per-user token buckets: `rate` requests per second sustained, bursts of up to `burst`.

Pure: the caller passes the clock reading, so tests need no sleeping.
"""

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_users: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_users = max_users
        self._buckets: dict[str, _Bucket] = {}

    def take(self, user_id: str, now: float) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is available (> 0)."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= self.max_users:
                self._forget_full(now)
            bucket = self._buckets[user_id] = _Bucket(self.burst, now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        """Keys remembered (at most `max_users`)."""
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        full_after = self.burst / self.rate
        for user_id in [u for u, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[user_id]
        if len(self._buckets) >= self.max_users:  # still full: drop the oldest half
            oldest = sorted(self._buckets, key=lambda u: self._buckets[u].at)
            for user_id in oldest[: len(oldest) // 2]:
                del self._buckets[user_id]


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds; never 0 for a refusal."""
    return str(max(1, math.ceil(wait_s)))
