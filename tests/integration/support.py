"""Helpers every integration test module may use: waiting for a condition, serving an app."""

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.config import LifespanType


async def eventually(probe: Callable[[], Any], what: str, wait_s: float = 30) -> Any:
    """Poll `probe` (sync or async) until it returns something truthy; that is the result."""
    deadline = time.monotonic() + wait_s
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {wait_s} s waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serve(app: FastAPI, port: int, lifespan: LifespanType = "auto") -> AsyncIterator[None]:
    """Run an ASGI app under uvicorn on a real loopback socket in this event loop
    (`lifespan="off"`: without its startup, e.g. a service app whose broker the test replaces)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
