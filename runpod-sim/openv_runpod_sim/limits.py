"""RunPod's rate and concurrency limits per endpoint and route, as RunPod enforces them:
requests counted per fixed window (10 s), requests in flight counted at once, and over either
an HTTP 429 with NO `Retry-After` (RunPod documents none). Off unless configured: at start
with `RUNPOD_SIM_RUNPOD_LIMITS=true` (RunPod's documented limits) and/or `RUNPOD_SIM_LIMITS`
(JSON, e.g. `{"run_per_window": 20, "window_s": 10}`), at run time with `POST /admin/limits`."""

import json
import time
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Clock = Callable[[], float]
#: RunPod's route names as they appear after `/v2/{endpoint_id}/`.
ROUTES = ("run", "runsync", "status", "cancel", "retry", "purge-queue", "health")


class Limits(BaseModel):
    """Per route: requests per window and at once; None = unlimited."""

    model_config = ConfigDict(extra="forbid")

    window_s: PositiveFloat = 10.0
    run_per_window: PositiveInt | None = None
    run_concurrent: PositiveInt | None = None
    status_per_window: PositiveInt | None = None
    cancel_per_window: PositiveInt | None = None
    cancel_concurrent: PositiveInt | None = None
    purge_queue_per_window: PositiveInt | None = None

    @classmethod
    def runpod(cls) -> "Limits":
        """RunPod's documented limits per endpoint (2026). /runsync shares /run's."""
        return cls(
            run_per_window=1000,
            run_concurrent=200,
            status_per_window=2000,
            cancel_per_window=100,
            cancel_concurrent=20,
            purge_queue_per_window=2,
        )

    def per_window(self, route: str) -> int | None:
        return getattr(self, f"{_family(route).replace('-', '_')}_per_window", None)

    def concurrent(self, route: str) -> int | None:
        return getattr(self, f"{_family(route)}_concurrent", None)


class LimitsUpdate(BaseModel):
    """Body of `POST /admin/limits`: `runpod: true` starts from RunPod's limits, `off: true`
    from none; then the given fields (null = unlimited) replace the current ones."""

    model_config = ConfigDict(extra="forbid")

    runpod: bool = False
    off: bool = False
    limits: dict[str, float | int | None] = Field(default_factory=dict)


def _family(route: str) -> str:
    return "run" if route == "runsync" else route


class RateLimiter:
    """Counts requests per (endpoint, route family): this window's and those in flight."""

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._window: tuple[int, Counter[tuple[str, str]]] = (-1, Counter())
        self._in_flight: Counter[tuple[str, str]] = Counter()
        #: 429s answered, per route family (for tests and benchmarks).
        self.throttled: Counter[str] = Counter()

    def update(self, update: LimitsUpdate) -> None:
        base = Limits.runpod() if update.runpod else Limits() if update.off else self.limits
        self.limits = Limits.model_validate({**base.model_dump(), **update.limits})
        self._window = (-1, Counter())

    def reset(self, limits: Limits) -> None:
        """Back to `limits` with nothing counted (requests in flight stay in flight)."""
        self.limits = limits
        self._window = (-1, Counter())
        self.throttled.clear()

    def admit(self, endpoint_id: str, route: str) -> bool:
        """Count a request starting; False (a 429, not counted in flight) when over a limit."""
        key = (endpoint_id, _family(route))
        index = int(self._clock() // self.limits.window_s)
        if index != self._window[0]:
            self._window = (index, Counter())
        counts = self._window[1]
        counts[key] += 1  # RunPod counts refused requests too: a retry in the window fails
        rate = self.limits.per_window(route)
        at_once = self.limits.concurrent(route)
        if (rate is not None and counts[key] > rate) or (
            at_once is not None and self._in_flight[key] >= at_once
        ):
            self.throttled[key[1]] += 1
            return False
        self._in_flight[key] += 1
        return True

    def done(self, endpoint_id: str, route: str) -> None:
        self._in_flight[(endpoint_id, _family(route))] -= 1

    def view(self) -> dict[str, object]:
        return {"limits": self.limits.model_dump(), "throttled": dict(self.throttled)}


class RateLimitMiddleware:
    """Plain ASGI middleware before the API (RunPod refuses over-limit calls before looking at
    them): a request is in flight until its answer is fully sent."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/") if scope["type"] == "http" else []
        # "", "v2", endpoint, route, ...
        if len(parts) < 4 or parts[1] != "v2" or parts[3] not in ROUTES:
            await self.app(scope, receive, send)
            return
        endpoint_id, route = parts[2], parts[3]
        if not self.limiter.admit(endpoint_id, route):
            await _too_many(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.done(endpoint_id, route)


async def _too_many(send: Send) -> None:
    body = json.dumps({"error": "Too many requests: rate limit exceeded"}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
