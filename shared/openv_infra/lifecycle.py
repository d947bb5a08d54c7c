"""A service's start and stop, one sequence for every service's `main.py`.

Start: each step in order (connect the broker, create the bucket, ...), then the background
tasks (relay, reconciler, lag watcher, ...). Stop: the tasks are cancelled and awaited, then
each close step runs in order; a step that fails is logged and the others still run, so one
stuck client never leaves a pool or a broker connection open.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[None]]
Task = Callable[[], Coroutine[Any, Any, None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def lifespan(
    *,
    start: Iterable[Step] = (),
    tasks: Mapping[str, Task] | None = None,
    close: Iterable[Step] = (),
) -> Lifespan:
    """The FastAPI lifespan that runs `start`, keeps `tasks` running while the app serves, and
    runs `close` when it stops (also when a start step failed)."""
    starts, closes, named = list(start), list(close), dict(tasks or {})

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        running: list[asyncio.Task[None]] = []
        try:
            for step in starts:
                await step()
            running = [asyncio.create_task(task(), name=name) for name, task in named.items()]
            yield
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await close_all(closes)

    return run


async def close_all(steps: Iterable[Step]) -> None:
    """Run every close step in order; a failure is logged and does not skip the rest."""
    for step in steps:
        try:
            await step()
        except Exception:
            log.exception("closing %s failed", getattr(step, "__qualname__", step))
