"""The RunPod client's per-route limiter: RunPod's rates (`domain.rate_limits`) plus its
concurrency caps, enforced before a request leaves, so a burst of videos becomes a queue on our
side instead of 429s (which RunPod answers without `Retry-After`) on theirs."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from openv_bridge.domain.rate_limits import RouteLimit, SlidingWindow, throttled_hold

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RouteBusy(Exception):
    """The route's next free start is further away than a caller may wait."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"RunPod's rate limit: next free slot in {wait_s:.1f} s")
        self.wait_s = wait_s


class RouteLimiter:
    def __init__(
        self,
        limit: RouteLimit,
        max_wait_s: float,
        jitter_s: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.window = SlidingWindow(limit.per_window, limit.window_s)
        self.max_wait_s = max_wait_s
        self.jitter_s = jitter_s
        self._slots = asyncio.Semaphore(limit.concurrent) if limit.concurrent else None
        self._clock = clock
        self._sleep = sleep

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one of the route's concurrent slots and wait for a start inside its rate;
        raises RouteBusy (nothing sent) rather than wait longer than `max_wait_s`."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            # Booked only once a slot is held: a start booked earlier but sent later could
            # crowd a later window.
            now = self._clock()
            wait = self.window.wait_s(now)
            if wait > self.max_wait_s:
                raise RouteBusy(wait)
            wait = self.window.reserve(now)
            if wait > 0:
                await self._sleep(wait)
            yield
        finally:
            if self._slots is not None:
                self._slots.release()

    def throttled(self, retry_after_s: float = 0.0) -> float:
        """RunPod answered 429: rest the whole route past its window; returns the rest (s)."""
        hold = throttled_hold(self.window.window_s, self.jitter_s, random.random(), retry_after_s)
        self.window.hold(self._clock() + hold)
        return hold


def route_limits(
    window_s: float,
    run_per_window: int,
    run_concurrency: int,
    status_per_window: int,
    cancel_per_window: int,
    cancel_concurrency: int,
) -> dict[str, RouteLimit]:
    """The limits per route (the first path segment); RunPod documents none for `/health`."""
    return {
        "run": RouteLimit(run_per_window, window_s, run_concurrency),
        "status": RouteLimit(status_per_window, window_s),
        "cancel": RouteLimit(cancel_per_window, window_s, cancel_concurrency),
    }


#: RunPod's documented limits per endpoint (2026).
RUNPOD_LIMITS = route_limits(10.0, 1000, 200, 2000, 100, 20)
