"""FastAPI app speaking RunPod Serverless' HTTP API (`/v2/{endpoint_id}/...`, api.py) plus admin
routes (admin.py), serving the results it rendered and sweeping expired jobs."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from openv_runpod_sim.admin import admin_router
from openv_runpod_sim.api import api_router
from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.handler_host import take_progress
from openv_runpod_sim.jobs import JobTable
from openv_runpod_sim.limits import RateLimitMiddleware
from openv_runpod_sim.simulator import ApiError, Simulator, error_response

__all__ = ["Simulator", "create_app"]

_SWEEP_INTERVAL_S = 0.1


class _ApiRequestLog:
    """Plain ASGI middleware (it must not change how requests run or get cancelled): notes
    every RunPod API call, with its path as the client sent it, in `JobTable.api_requests`."""

    def __init__(self, app: ASGIApp, table: JobTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v2/"):
            raw = scope.get("raw_path") or scope["path"].encode()
            self.table.api_requests.append(f"{scope['method']} {raw.decode('latin-1')}")
        await self.app(scope, receive, send)


def create_app(settings: SimSettings | None = None) -> FastAPI:
    settings = settings or SimSettings()
    sim = Simulator(settings)

    async def sweep_forever() -> None:
        # ttl must stop running jobs even when nobody polls them.
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL_S)
            sim.table.sweep()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.runner.start()
        sweeper = asyncio.create_task(sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await sim.runner.close()

    app = FastAPI(title="OpenV RunPod simulator", lifespan=lifespan)
    app.state.sim = sim

    # Inside the request log: a call refused for the rate limit is still a call made.
    app.add_middleware(RateLimitMiddleware, limiter=sim.limiter)
    app.add_middleware(_ApiRequestLog, table=sim.table)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    app.include_router(api_router(sim))
    app.include_router(admin_router(sim, settings))

    @app.get("/files/{name}")
    async def files(name: str) -> Response:
        # No auth: whoever gets the result URL may fetch it, like a public bucket link.
        job = sim.table.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if job is None or job.video is None:
            return error_response(404, "file not found")
        return Response(content=job.video, media_type="video/mp4")

    @app.post("/_worker/output/{job_id}")
    async def worker_output(job_id: str, request: Request) -> Response:
        # What a hosted handler's runpod SDK POSTs (progress); the final result comes back
        # from its process (handler_host.py).
        taken = take_progress(sim.table.get(job_id), await request.body())
        return Response(status_code=200 if taken else 404)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app
