"""The RunPod client's call machinery: one HTTP call with its timeout, retries, rate limits
and answer checks, for the endpoint methods in `runpod_client`.

Transient trouble (connection errors, 5xx) is retried with exponential backoff and jitter,
honouring Retry-After, a bounded number of times; a 4xx about the request itself is a permanent
refusal. A call that is not idempotent (`/run`) is only retried when RunPod cannot have acted on
it: the connection never opened, or RunPod's own server answered 500 or 503. When it may have
(a timeout or a dropped connection after the request was sent, a gateway's 502/504) the call
raises `RunPodAnswerLost` at once.

RunPod's rate limits (`adapters.runpod_limits`) are kept before a request leaves. A 429 rests
the whole route past RunPod's 10 s window (it counts per window and sends no Retry-After); a
call that would wait longer than the limiter allows raises `RunPodThrottled`: nothing was sent,
and the caller tries later. A 401/403, or a 404 for the endpoint, raises `RunPodMisconfigured`
and marks the client misconfigured (`access`) until a call succeeds (`domain.runpod_access`).
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from openv_bridge.adapters.metrics import RUNPOD_MISCONFIGURED, RUNPOD_THROTTLED, timed_call
from openv_bridge.adapters.runpod_limits import RUNPOD_LIMITS, RouteBusy, RouteLimiter
from openv_bridge.domain.rate_limits import RouteLimit, throttled_hold
from openv_bridge.domain.runpod_access import AccessState, Verdict, classify
from openv_bridge.domain.runpod_errors import (
    AnswerTooLarge,
    JobNotFound,
    RunPodAnswerLost,
    RunPodError,
    RunPodMisconfigured,
    RunPodRefused,
    RunPodThrottled,
    RunSend,
)
from openv_bridge.domain.runpod_texts import MAX_MESSAGE, clean_text
from openv_contracts.segments import path_segment
from openv_infra.http import async_client

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


def segment(value: str) -> str:
    """`value` as one URL path segment (openv_contracts.segments); an empty or dots-only value
    is refused rather than encoded: no RunPod id looks like that."""
    if value.strip(".") == "":
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return path_segment(value)


# The request never reached RunPod: safe to send again even when not idempotent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers of a proxy in front of RunPod's API that had passed the request on and lost the
# answer: 502/504 (and Cloudflare's 520 "unknown" and 524 "origin timed out"). A job may exist.
# 500 and 503 come from RunPod's own server, which says it could not handle the request (503:
# not at all; 500: it failed, and RunPod documents no job surviving that): retried as today.
_ANSWER_LOST_STATUSES = frozenset({502, 504, 520, 524})


class RunPodHttp:
    """Calls to one RunPod endpoint (`base_url`/`endpoint_id`) with the bridge's key."""

    def __init__(
        self,
        base_url: str,
        endpoint_id: str,
        api_key: str,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        retry_after_max_s: float = 30.0,
        max_connections: int = 24,
        max_answer_bytes: int = 128 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        limits: dict[str, RouteLimit] | None = None,
        limit_max_wait_s: float = 30.0,
        throttle_jitter_s: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = async_client(
            internal=False,
            base_url=f"{base_url.rstrip('/')}/{segment(endpoint_id)}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            # As many kept alive as may be open: above httpx's default of 20 kept alive, each
            # burst of calls opened connections only to close them again. And no more: httpcore
            # walks every pooled connection twice per request.
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.retry_after_max_s = retry_after_max_s
        #: Answers are read into memory; a /status answer carries the job's output, which a
        #: worker returning its video inline (base64) makes large.
        self.max_answer_bytes = max_answer_bytes
        self._sleep = sleep
        self._limiters = {
            route: RouteLimiter(limit, limit_max_wait_s, throttle_jitter_s, clock, sleep)
            for route, limit in (RUNPOD_LIMITS if limits is None else limits).items()
        }
        #: Whether RunPod currently refuses our key or endpoint (readiness, the reconciler).
        self.access = AccessState()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        job_call: bool = False,
        send: RunSend | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        route = path.split("/")[1]
        send = send or RunSend()
        for attempt in range(1, self.max_attempts + 1):
            delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
            try:
                async with self._admitted(route), timed_call(route) as labels:
                    try:
                        send.maybe_sent = True
                        response = await self._request(method, path, **kwargs)
                    except httpx.TransportError as exc:
                        labels["status"] = type(exc).__name__
                        raise
                    labels["status"] = str(response.status_code)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise RunPodAnswerLost(
                        f"{method} {path}: {problem} (RunPod may have it)"
                    ) from exc
                send.maybe_sent = False
            else:
                if not idempotent and response.status_code in _ANSWER_LOST_STATUSES:
                    raise RunPodAnswerLost(
                        f"{method} {path}: HTTP {response.status_code} (RunPod may have it)"
                    )
                if response.status_code >= 300:
                    send.maybe_sent = False  # RunPod answered: no job (or a refusal)
                verdict = classify(response.status_code, job_call)
                if verdict is Verdict.OK:
                    self._answered()
                    return _json_object(response, path)
                if verdict is Verdict.JOB_NOT_FOUND:
                    raise JobNotFound(path)
                if verdict is Verdict.MISCONFIGURED:
                    raise self._misconfigured(response)
                if verdict is Verdict.REFUSED:
                    raise RunPodRefused(response.status_code, _error_message(response))
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    rest = self._throttled(route, response)
                    if not idempotent:
                        # The caller decides when to try again; it must not count as a failure.
                        raise RunPodThrottled(f"{method} {path}: HTTP 429", rest)
                    # A limited route's next admission waits out the rest; others sleep it.
                    delay = 0.0 if route in self._limiters else rest
                    problem = f"HTTP 429, the route rests {rest:.1f} s"
                else:
                    delay = max(delay, self._retry_after(response))
            if attempt == self.max_attempts:
                raise RunPodError(f"{method} {path} failed after {attempt} attempts: {problem}")
            log.warning("RunPod %s %s: %s; retrying in %.2f s", method, path, problem, delay)
            if delay > 0:
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request and read its answer, refusing one over `max_answer_bytes` (counted
        decoded, while it streams in) with AnswerTooLarge, which is not retried."""
        request = self._http.build_request(method, path, **kwargs)
        response = await self._http.send(request, stream=True)
        chunks: list[bytes] = []
        try:
            declared = response.headers.get("content-length", "")
            too_large = declared.isdigit() and int(declared) > self.max_answer_bytes
            size = 0
            if not too_large:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_answer_bytes:
                        too_large = True
                        break
                    chunks.append(chunk)
        finally:
            await response.aclose()
        if too_large:
            raise AnswerTooLarge(
                f"{method} {path}: the answer is larger than {self.max_answer_bytes} bytes"
            )
        # Already decoded: the encoding headers no longer describe the content.
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=request
        )

    def _throttled(self, route: str, response: httpx.Response) -> float:
        """Rest `route` past RunPod's window after its 429; returns the rest (s)."""
        RUNPOD_THROTTLED.labels(route).inc()
        retry_after = self._retry_after(response)
        limiter = self._limiters.get(route)
        if limiter is None:  # a route with no limit of ours (/health): this call waits alone
            return throttled_hold(RUNPOD_LIMITS["run"].window_s, 2.0, random.random(), retry_after)
        return limiter.throttled(retry_after)

    @contextlib.asynccontextmanager
    async def _admitted(self, route: str) -> AsyncIterator[None]:
        limiter = self._limiters.get(route)
        if limiter is None:
            yield
            return
        try:
            async with limiter.admit():
                yield
        except RouteBusy as exc:  # raised before anything was sent
            raise RunPodThrottled(str(exc), exc.wait_s) from None

    def _answered(self) -> None:
        if self.access.answered():
            RUNPOD_MISCONFIGURED.set(0)
            log.warning("RunPod accepts the bridge's key and endpoint again")

    def _misconfigured(self, response: httpx.Response) -> RunPodMisconfigured:
        error = RunPodMisconfigured(response.status_code, _error_message(response))
        if self.access.refused(str(error)):
            RUNPOD_MISCONFIGURED.set(1)
            # Once per change, not per call: every call fails the same way until it is fixed.
            log.error("%s; videos wait until this is fixed (check OPENV_RUNPOD_*)", error)
        return error

    def _retry_after(self, response: httpx.Response) -> float:
        """Retry-After in seconds (a number or an HTTP date), capped; 0 if absent or bad."""
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return 0.0
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                return 0.0
        return max(0.0, min(self.retry_after_max_s, seconds))


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, RecursionError):
        raise RunPodError(f"{path}: answer is not JSON") from None
    if not isinstance(data, dict):
        raise RunPodError(f"{path}: answer is not a JSON object")
    return data


def _error_message(response: httpx.Response) -> str:
    """RunPod's own words: the `error` (or `message`) of a JSON answer, else the body; cleaned,
    since it becomes a fact's message and a column of the bridge's record."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str) and data[key]:
                return clean_text(str(data[key]), MAX_MESSAGE // 2)
    return clean_text(response.text, MAX_MESSAGE // 2) or f"HTTP {response.status_code}"
