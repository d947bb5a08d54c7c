"""Composition root of the gateway: the public REST API."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.jobs_client import JobsClient
from openv_gateway.adapters.jwks import JwksKeys
from openv_gateway.adapters.jwt_verifier import JwtVerifier
from openv_gateway.adapters.playback import Playback
from openv_gateway.adapters.video_feed import VideoFeed
from openv_gateway.config import Settings
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.rate_limit import RateLimiter
from openv_gateway.entrypoints import problems, routes, stream
from openv_gateway.entrypoints.schemas import Health
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import VideosService
from openv_shared import topics
from openv_shared.kafka import make_broker
from openv_shared.s3 import make_minio

log = logging.getLogger(__name__)

READY_CHECK_TIMEOUT_S = 2.0

DESCRIPTION = """\
Generate videos from prompts on RunPod Serverless; watch them, play them, delete them.

**Authentication**: `Authorization: Bearer <Supabase access token>` on every `/v1` route.

**Errors** are `application/problem+json` (RFC 9457) with a machine-readable `code`:
`invalid_parameter` (422, with `errors`), `unauthorized` (401, with `WWW-Authenticate: Bearer`),
`not_found` (404; another user's video is answered exactly like a missing one), `conflict` (409),
`concurrency_limit`, `quota_exceeded`, `rate_limited` (429, always with `Retry-After`),
`unavailable` (503, with `Retry-After`).

**Limits**: a few videos in progress per user at once (3 by default) and a monthly quota of video
seconds, decided by the jobs service. Besides, each gateway instance allows every user
{rate:g} requests/s with bursts of {burst} (`rate_limited`); the limit is per instance.

**Live status**: `GET /v1/videos/{{id}}` suggests a poll interval in `Retry-After` while the
video is not terminal; `GET /v1/videos/{{id}}/stream` pushes every change (SSE);
`Prefer: wait=N` on create holds the answer until the video is terminal.
"""


def _tidy_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Error responses are problem+json only (FastAPI also lists its default media type)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if problems.PROBLEM_JSON in content:
                    content.pop("application/json", None)
                if "text/event-stream" in content:
                    content.pop("application/json", None)
            # FastAPI's own validation error schema is never used: ours is the Problem.
            for status in ("422",):
                response = operation.get("responses", {}).get(status)
                if response is not None and problems.PROBLEM_JSON not in response.get(
                    "content", {}
                ):
                    response["content"] = {
                        problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, "openv-gateway", publishes=(topics.COMMANDS,))
    jobs = JobsClient(settings.jobs_url, settings.jobs_timeout_s)
    live = LiveVideos(jobs.video, settings.live_fallback_poll_s)
    feed = VideoFeed(settings, "openv-gateway-live", live.is_watched, live.notify)
    jwks = (
        JwksKeys(
            settings.jwt_jwks_url,
            cache_s=settings.jwt_jwks_cache_s,
            min_refresh_s=settings.jwt_jwks_min_refresh_s,
            timeout_s=settings.jwt_jwks_timeout_s,
        )
        if settings.jwt_jwks_url
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await live.close()
            await broker.stop()
            await jobs.aclose()
            if jwks is not None:
                await jwks.aclose()

    app = FastAPI(
        title="OpenV API",
        version="1.0.0",
        description=DESCRIPTION.format(
            rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst
        ),
        lifespan=lifespan,
    )
    app.state.jwt = JwtVerifier(
        settings.jwt_secret.get_secret_value(),
        settings.jwt_audience,
        jwks,
        issuer=settings.jwt_issuer,
        allow_anonymous=settings.jwt_allow_anonymous,
        leeway_s=settings.jwt_leeway_s,
    )
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.live = live
    app.state.videos = VideosService(
        jobs,
        CommandBus(broker),
        live,
        settings.decision_wait_s,
        PendingRequests(settings.pending_memory_s),
    )
    app.state.playback = Playback(
        make_minio(settings, public=True), settings.s3_bucket, settings.playback_url_expiry_s
    )
    app.state.poll_interval_s = settings.poll_interval_s
    app.state.sse_keepalive_s = settings.sse_keepalive_s
    app.state.concurrency_retry_after_s = settings.concurrency_retry_after_s
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(stream.router)

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        response_model_exclude_none=True,
        summary="Liveness",
    )
    async def healthz() -> Health:
        return Health(status="ok")

    async def kafka_ok() -> bool:
        return await broker.ping(READY_CHECK_TIMEOUT_S)

    async def feed_ok() -> bool:
        return feed.running

    async def check(name: str, probe: Any) -> bool:
        try:
            return bool(await asyncio.wait_for(probe(), READY_CHECK_TIMEOUT_S + 0.5))
        except Exception as exc:  # any failure means "not ready"
            log.warning("readiness check %s failed: %s", name, exc)
            return False

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "A dependency is unreachable."}},
        summary="Readiness: the jobs API and Kafka answer",
    )
    async def readyz() -> JSONResponse:
        probes = {"jobs": app.state.videos.ready, "kafka": kafka_ok, "live_feed": feed_ok}
        results = await asyncio.gather(*(check(n, p) for n, p in probes.items()))
        checks = dict(zip(probes, results, strict=True))
        ok = all(results)
        body = Health(status="ok" if ok else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _tidy_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
