"""Composition root of the jobs service: database, broker, relay, query API."""

from fastapi import FastAPI

from openv_contracts import topics
from openv_infra.admin import INTERNAL_DOCS
from openv_infra.db import asyncpg_dsn, make_engine
from openv_infra.health import broker_check, database_check, install_health
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.metrics import watch_consumer_lag
from openv_infra.publishing import publish_many, video_key
from openv_jobs.adapters import migrations
from openv_jobs.adapters.postgres_recorder import PostgresRecorder
from openv_jobs.adapters.projector import Projector
from openv_jobs.adapters.queries import Queries
from openv_jobs.adapters.rebuild import RebuildResult, rebuild
from openv_jobs.adapters.relay import Relay
from openv_jobs.adapters.stuck_videos import PostgresStuckVideos
from openv_jobs.adapters.video_counts import refresh_video_counts
from openv_jobs.config import Settings
from openv_jobs.entrypoints import api, consumers
from openv_jobs.service_layer.jobs_service import JobsService
from openv_jobs.service_layer.recorder import RecordedEvent
from openv_jobs.service_layer.video_timers import VideoTimers


async def migrate(settings: Settings) -> None:
    """Bring the database schema to the latest migration (Alembic; idempotent)."""
    await migrations.upgrade(settings)


async def rebuild_projections(settings: Settings, swap: bool) -> RebuildResult:
    return await rebuild(asyncpg_dsn(settings), swap=swap)


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings)
    broker = make_broker(settings, "openv-jobs", publishes=(topics.VIDEO_EVENTS,))
    service = JobsService(PostgresRecorder(engine), settings.limits)
    consumers.register(broker, service, settings, settings.consumer_batch_size)

    async def publish_events(batch: list[RecordedEvent]) -> None:
        await publish_many(
            broker, topics.VIDEO_EVENTS, [(r.envelope, video_key(r.envelope)) for r in batch]
        )

    relay = Relay(asyncpg_dsn(settings), publish_events, settings.relay_batch_size)
    projector = Projector(
        asyncpg_dsn(settings), min_interval_s=settings.projector_interval_ms / 1000
    )

    timers = VideoTimers(
        PostgresStuckVideos(engine),
        service,
        settings.queued_timeout_s,
        settings.silent_timeout_s,
        settings.queued_timeout_check_s,
    )

    lifespan = service_lifespan(
        start=[broker.start],
        tasks={
            "video-timers": timers.run,
            "relay": relay.run,
            "projector": projector.run,
            "video-counts": lambda: refresh_video_counts(engine),
            "lag": lambda: watch_consumer_lag(broker, "jobs"),
        },
        close=[broker.stop, service.close, engine.dispose],
    )
    app = FastAPI(title="OpenV jobs (internal)", lifespan=lifespan, **INTERNAL_DOCS)
    app.state.queries = Queries(engine, settings.limits)
    app.state.service = service
    app.include_router(api.router)

    install_health(app, {"database": database_check(engine), "kafka": broker_check(broker)})

    return app
