"""Bounded retries with exponential backoff: the schedule only (the waiting is elsewhere)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; before try n+1 wait `base_s * 2**(n-1)`, at most `max_s`."""

    attempts: int = 6
    base_s: float = 0.5
    max_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base_s < 0 or self.max_s < 0:
            raise ValueError("backoff must be >= 0")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based) before the next one."""
        return min(self.max_s, self.base_s * 2.0 ** (attempt - 1))

    def delays(self) -> list[float]:
        """Every wait of a run that fails on each attempt (one fewer than the attempts)."""
        return [self.delay_after(n) for n in range(1, self.attempts)]

    def budget_s(self, per_attempt_s: float) -> float:
        """Worst-case time of a whole run whose attempts each take at most `per_attempt_s`."""
        return self.attempts * per_attempt_s + sum(self.delays())
