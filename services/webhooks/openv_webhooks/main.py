"""Composition root of the webhooks service: Postgres stores, the guarded HTTP sender, the
recorder on the video events, the dispatcher loop, the internal API."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_infra.admin import INTERNAL_DOCS
from openv_infra.db import make_engine
from openv_infra.health import broker_check, database_check, install_health
from openv_infra.jobs_api import JobsApi
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.metrics import watch_consumer_lag
from openv_infra.playback import Playback
from openv_infra.s3 import make_minio
from openv_infra.webhook_signing import new_secret
from openv_webhooks.adapters.delivery_queue import PostgresDeliveries
from openv_webhooks.adapters.http_sender import HttpSender
from openv_webhooks.adapters.metrics import PrometheusDeliveryMetrics
from openv_webhooks.adapters.secret_store import PostgresSecrets
from openv_webhooks.adapters.watch_store import PostgresWatches
from openv_webhooks.config import Settings
from openv_webhooks.entrypoints import consumers, routes
from openv_webhooks.service_layer.attempts import Attempter
from openv_webhooks.service_layer.dispatching import Dispatcher, DispatchLimits
from openv_webhooks.service_layer.recording import Recorder
from openv_webhooks.service_layer.replaying import Replayer
from openv_webhooks.service_layer.secrets import Secrets


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Webhooks:
    """Everything the service is made of, wired once (the app, the `replay` command, tests)."""

    engine: AsyncEngine
    jobs: JobsApi
    sender: HttpSender
    deliveries: PostgresDeliveries
    secrets: Secrets
    recorder: Recorder
    dispatcher: Dispatcher
    replayer: Replayer

    async def aclose(self) -> None:
        await self.dispatcher.stop()
        await self.sender.aclose()
        await self.jobs.aclose()
        await self.engine.dispose()


def build(settings: Settings, clock: Callable[[], datetime] = utcnow) -> Webhooks:
    engine = make_engine(settings)
    jobs = JobsApi(settings.jobs_url, settings.jobs_timeout_s)
    sender = HttpSender(
        settings.webhook_address_policy,
        timeout_s=settings.client_webhook_timeout_s,
        allow_http=settings.client_webhook_allow_http,
        max_connections=settings.client_webhook_concurrency,
    )
    playback = Playback(
        make_minio(settings, public=True), settings.s3_bucket, settings.playback_url_expiry_s
    )
    deliveries = PostgresDeliveries(engine)
    secrets = Secrets(
        PostgresSecrets(engine), new_secret, settings.client_webhook_secret_overlap_s, clock
    )
    dispatcher = Dispatcher(
        deliveries,
        Attempter(sender, secrets, playback.links, clock),
        DispatchLimits(
            concurrency=settings.client_webhook_concurrency,
            per_receiver=settings.client_webhook_per_receiver,
            poll_s=settings.client_webhook_poll_s,
            lease_s=settings.lease_s,
        ),
        settings.retry_schedule,
        PrometheusDeliveryMetrics(),
        clock,
    )
    recorder = Recorder(
        PostgresWatches(engine),
        jobs,
        settings.client_webhook_give_up_s,
        clock,
        recorded=dispatcher.wake,
    )
    replayer = Replayer(
        deliveries, settings.client_webhook_give_up_s, clock, replayed=dispatcher.wake
    )
    return Webhooks(engine, jobs, sender, deliveries, secrets, recorder, dispatcher, replayer)


def create_app(settings: Settings) -> FastAPI:
    webhooks = build(settings)
    broker: KafkaBroker = make_broker(settings, "openv-webhooks")
    consumers.register(broker, webhooks.recorder, settings)
    lifespan = service_lifespan(
        start=[broker.start],
        tasks={
            # State lives in Postgres: after a restart this picks up every pending delivery.
            "dispatcher": webhooks.dispatcher.run_forever,
            "lag": lambda: watch_consumer_lag(broker, "webhooks"),
        },
        close=[broker.stop, webhooks.aclose],
    )
    app = FastAPI(title="OpenV webhooks", lifespan=lifespan, **INTERNAL_DOCS)
    app.state.webhooks = webhooks
    app.state.api = routes.Api(webhooks.secrets, webhooks.deliveries, webhooks.replayer)
    app.include_router(routes.router)
    install_health(
        app, {"database": database_check(webhooks.engine), "kafka": broker_check(broker)}
    )
    return app
