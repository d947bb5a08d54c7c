"""Composition root of the gateway: the public REST API."""

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from openv_contracts import topics
from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.jobs_client import JobsClient
from openv_gateway.adapters.jwks import JwksKeys
from openv_gateway.adapters.jwt_verifier import JwtVerifier
from openv_gateway.adapters.playback import Playback
from openv_gateway.adapters.video_feed import VideoFeed
from openv_gateway.config import Settings
from openv_gateway.domain.body_limit import BodyLimits
from openv_gateway.domain.long_lived import OpenRequests
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.rate_limit import RateLimiter
from openv_gateway.entrypoints import problems, routes, stream
from openv_gateway.entrypoints.body_limit import BodyLimitMiddleware
from openv_gateway.entrypoints.schemas import Health
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import VideosService
from openv_infra.health import broker_check, install_readiness
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import Step
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.s3 import make_minio

log = logging.getLogger(__name__)

DESCRIPTION = """\
Generate videos from prompts on RunPod Serverless; watch them, play them, delete them.

**Authentication**: `Authorization: Bearer <Supabase access token>` on every `/v1` route.

**Errors** are `application/problem+json` (RFC 9457) with a machine-readable `code`:
`invalid_parameter` (422, with `errors`), `unauthorized` (401, with `WWW-Authenticate: Bearer`),
`not_found` (404; another user's video is answered exactly like a missing one), `conflict` (409),
`concurrency_limit`, `quota_exceeded`, `rate_limited` (429, always with `Retry-After`),
`payload_too_large` (413), `unavailable` (503, with `Retry-After`).

**Text**: free text (prompts, cursors) may not hold control characters (tab, line feed and
carriage return excepted), lone surrogates or Unicode non-characters: 422 naming the field.

**Limits**: a few videos in progress per user at once (3 by default) and a monthly quota of video
seconds, decided by the jobs service. Besides, each gateway instance allows every user
{rate:g} requests/s with bursts of {burst} (`rate_limited`), and {open} long-lived requests
open at once (streams, `Prefer: wait`, `DELETE ?wait`; `rate_limited`); requests without a
valid token are limited per client address. A create's body may hold {create_bytes} bytes,
other requests' {other_bytes} (`payload_too_large`); JSON nested deeper than {depth} levels is
`invalid_parameter`. The limits are per instance.

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

    async def start_feed() -> None:
        feed.start()

    close: list[Step] = [feed.stop, live.close, broker.stop, jobs.aclose]
    if jwks is not None:
        close.append(jwks.aclose)
    lifespan = service_lifespan(start=[broker.start, start_feed], close=close)

    app = FastAPI(
        title="OpenV API",
        version="1.0.0",
        description=DESCRIPTION.format(
            rate=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            open=settings.max_open_per_user,
            create_bytes=settings.max_body_bytes_create,
            other_bytes=settings.max_body_bytes_other,
            depth=settings.max_json_depth,
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
    app.state.anonymous_rate_limiter = RateLimiter(
        settings.anonymous_rate_limit_per_s, settings.anonymous_rate_limit_burst
    )
    app.state.open_requests = OpenRequests(settings.max_open_per_user)
    app.state.open_retry_after_s = settings.open_retry_after_s
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
    # Before everything that reads the body: routing, authentication, parsing.
    app.add_middleware(
        BodyLimitMiddleware,
        limits=BodyLimits(settings.max_body_bytes_create, settings.max_body_bytes_other),
        max_json_depth=settings.max_json_depth,
    )
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

    async def feed_ok() -> bool:
        return feed.running

    # On the admin port; the public OpenAPI document and /docs stay on the public port: they
    # describe the public API (docs/operations.md, "Admin port").
    install_readiness(
        app,
        {"jobs": app.state.videos.ready, "kafka": broker_check(broker), "live_feed": feed_ok},
    )

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
