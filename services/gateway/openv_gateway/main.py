"""Composition root of the gateway: the public REST API."""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.jobs_client import JobsClient
from openv_gateway.adapters.jwt_verifier import JwtVerifier
from openv_gateway.adapters.playback import Playback
from openv_gateway.config import Settings
from openv_gateway.entrypoints import problems, routes
from openv_gateway.service_layer.videos import VideosService
from openv_shared.kafka import make_broker
from openv_shared.s3 import make_minio


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, "openv-gateway")
    jobs = JobsClient(settings.jobs_url, settings.jobs_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await jobs.aclose()

    app = FastAPI(
        title="OpenV API",
        version="1.0.0",
        description="Generate videos from prompts on RunPod Serverless; watch, play, delete.",
        lifespan=lifespan,
    )
    app.state.jwt = JwtVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    app.state.videos = VideosService(jobs, CommandBus(broker), settings.decision_wait_s)
    app.state.playback = Playback(
        make_minio(settings, public=True), settings.s3_bucket, settings.playback_url_expiry_s
    )
    app.state.poll_interval_s = settings.poll_interval_s
    problems.install(app)
    app.include_router(routes.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ok = await jobs.healthy()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503
        )

    return app
