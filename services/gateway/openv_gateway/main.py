"""Composition root of the gateway: the public REST API."""

import logging

from fastapi import FastAPI

from openv_contracts import topics
from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.host_resolver import HostResolver
from openv_gateway.adapters.jwks import JwksKeys
from openv_gateway.adapters.jwt_verifier import JwtVerifier
from openv_gateway.adapters.live_metrics import expose
from openv_gateway.config import Settings
from openv_gateway.domain.body_limit import BodyLimits
from openv_gateway.domain.long_lived import OpenRequests
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.rate_limit import RateLimiter
from openv_gateway.domain.stream_token import StreamTokens
from openv_gateway.entrypoints import (
    cors,
    local_sign_in,
    openapi_docs,
    problems,
    routes,
    stream,
    stream_auth,
    web_app,
    webhook_routes,
)
from openv_gateway.entrypoints.body_limit import BodyLimitMiddleware
from openv_gateway.entrypoints.dependencies import LongLived
from openv_gateway.entrypoints.fast_reads import FastReads
from openv_gateway.entrypoints.video_feed import VideoFeed
from openv_gateway.entrypoints.video_json import VideoJson
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.stream_hub import StreamHub
from openv_gateway.service_layer.videos import VideosService
from openv_gateway.service_layer.webhook_targets import WebhookTargets
from openv_gateway.service_layer.webhooks import WebhooksService
from openv_gateway.web import load_catalog
from openv_infra.docs_pages import docs_router
from openv_infra.health import broker_check, install_health
from openv_infra.jobs_api import JobsApi
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import Step
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.playback import Playback
from openv_infra.s3 import make_minio
from openv_infra.webhooks_api import WebhooksApi

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, "openv-gateway", publishes=(topics.COMMANDS,))
    jobs = JobsApi(settings.jobs_url, settings.jobs_timeout_s, settings.jobs_queue_s)
    webhooks_api = WebhooksApi(settings.webhooks_url, settings.webhooks_timeout_s)
    live = LiveVideos(
        jobs.video,
        settings.live_fallback_poll_s,
        settings.known_videos_max,
        trusted_ttl_s=settings.live_max_trust_s,
    )
    feed = VideoFeed(
        settings,
        "openv-gateway-live",
        live.follows,
        live.notify,
        following=live.feed_following,
        lost=live.feed_lost,
    )
    playback = Playback(
        make_minio(settings, public=True), settings.s3_bucket, settings.playback_url_expiry_s
    )
    video_json = VideoJson(playback)
    hub = StreamHub(live, stream.status_frames(video_json), settings.sse_keepalive_s)
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

    close: list[Step] = [
        feed.stop,
        hub.close,
        live.close,
        broker.stop,
        jobs.aclose,
        webhooks_api.aclose,
    ]
    if jwks is not None:
        close.append(jwks.aclose)
    lifespan = service_lifespan(start=[broker.start, start_feed], close=close)

    app = FastAPI(
        title=openapi_docs.TITLE,
        version=openapi_docs.VERSION,
        description=openapi_docs.describe(settings),
        lifespan=lifespan,
        # Served below with their assets from the gateway itself (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.jwt = JwtVerifier(
        settings.jwt_secret.get_secret_value(),
        settings.jwt_audience,
        jwks,
        issuer=settings.jwt_issuer,
        allow_anonymous=settings.jwt_allow_anonymous,
        leeway_s=settings.jwt_leeway_s,
        cache_size=settings.jwt_verified_cache_size,
    )
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.anonymous_rate_limiter = RateLimiter(
        settings.anonymous_rate_limit_per_s, settings.anonymous_rate_limit_burst
    )
    app.state.settings = settings
    app.state.stream_tokens = StreamTokens(
        settings.stream_token_secret.get_secret_value(), settings.stream_token_ttl_s
    )
    app.state.long_lived = LongLived(
        OpenRequests(settings.max_open_per_user), settings.open_retry_after_s
    )
    app.state.live = live
    expose(live)
    app.state.videos = VideosService(
        jobs,
        CommandBus(broker),
        live,
        settings.decision_wait_s,
        PendingRequests(settings.pending_memory_s),
    )
    app.state.webhooks = WebhooksService(app.state.videos, webhooks_api)
    app.state.webhook_targets = WebhookTargets(
        HostResolver(),
        settings.webhook_address_policy.allows,
        settings.client_webhook_allow_http,
    )
    app.state.playback = playback
    app.state.stream_hub = hub
    app.state.video_json = video_json
    problems.install(app)
    # Innermost: the polls it answers skip routing and dependencies, nothing else.
    app.add_middleware(FastReads)
    # Before everything that reads the body: routing, authentication, parsing.
    app.add_middleware(
        BodyLimitMiddleware,
        limits=BodyLimits(settings.max_body_bytes_create, settings.max_body_bytes_other),
        max_json_depth=settings.max_json_depth,
    )
    app.include_router(routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(stream.router)
    app.include_router(stream_auth.router)
    app.include_router(docs_router(app.openapi_url or "/openapi.json", app.title))
    # Outermost, after every other middleware: preflights and every answer (errors too).
    cors.install(app, settings.cors_origin_list, settings.cors_max_age_s)

    async def feed_ok() -> bool:
        return feed.running

    # /healthz here, /readyz on the admin port; the public OpenAPI document and /docs stay
    # on the public port: they describe the public API (docs/operations.md, "Admin port").
    install_health(
        app,
        {"jobs": app.state.videos.ready, "kafka": broker_check(broker), "live_feed": feed_ok},
    )

    openapi_docs.install(app)
    # The web app (issue #22): the page, its assets and config, and the local sign-in.
    web_app.install(app, settings, load_catalog())
    local_sign_in.install(app, settings)
    return app
