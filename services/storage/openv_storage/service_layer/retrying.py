"""Run an operation under a `RetryPolicy`: bounded tries, exponential backoff, then give up."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from openv_storage.domain.retry import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class RetriesExhausted(Exception):
    """Every attempt failed; `str()` says what and the last error."""


async def with_retries(
    what: str,
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    retry_on: tuple[type[Exception], ...],
    *,
    sleep: Sleep = asyncio.sleep,
    on_failure: Callable[[Exception], None] | None = None,
) -> T:
    """`operation()`'s result; errors of the `retry_on` types are retried, others raised."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await operation()
        except retry_on as exc:
            if on_failure is not None:
                on_failure(exc)
            if attempt == policy.attempts:
                raise RetriesExhausted(
                    f"{what} failed after {policy.attempts} attempts; last error: {exc}"
                ) from exc
            delay = policy.delay_after(attempt)
            log.warning(
                "%s failed (attempt %d of %d): %s; next try in %.1f s",
                what,
                attempt,
                policy.attempts,
                exc,
                delay,
            )
            await sleep(delay)
    raise AssertionError("unreachable: RetryPolicy.attempts >= 1")
