"""Composition root of the storage service: bucket, import source, jobs API, broker, sweeper."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from openv_contracts import topics
from openv_infra.admin import INTERNAL_DOCS, admin_router
from openv_infra.health import broker_check, install_health
from openv_infra.jobs_api import JobsApi
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import Task
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.metrics import watch_consumer_lag
from openv_infra.publishing import video_publisher
from openv_storage.adapters.bucket import Bucket, StorageUnavailable, make_client
from openv_storage.adapters.poster_frames import extract_poster
from openv_storage.adapters.source import UrlSource
from openv_storage.config import Settings
from openv_storage.domain.sweep import SweepReport
from openv_storage.entrypoints import consumers
from openv_storage.entrypoints.periodic import sweep_periodically
from openv_storage.service_layer.deletions import DeletionService
from openv_storage.service_layer.imports import ImportLimits, ImportService
from openv_storage.service_layer.posters import PosterService
from openv_storage.service_layer.retrying import with_retries
from openv_storage.service_layer.stats import StorageStats
from openv_storage.service_layer.sweeper import Sweeper

log = logging.getLogger(__name__)


@dataclass
class Storage:
    """Everything the service is made of, wired once (the app and the `sweep` command)."""

    settings: Settings
    broker: KafkaBroker
    bucket: Bucket
    source: UrlSource
    jobs: JobsApi
    stats: StorageStats
    deletions: DeletionService
    imports: ImportService
    posters: PosterService
    sweeper: Sweeper

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing; S3 errors are retried under the policy."""
        created = await with_retries(
            f"creating bucket {self.bucket.name}",
            self.bucket.ensure,
            self.settings.retry_policy,
            (StorageUnavailable,),
        )
        log.info("bucket %s %s", self.bucket.name, "created" if created else "exists")

    async def aclose(self) -> None:
        await self.source.aclose()
        await self.jobs.aclose()


def build(settings: Settings, client_id: str = "openv-storage") -> Storage:
    broker = make_broker(settings, client_id, publishes=(topics.STORAGE_EVENTS,))
    bucket = Bucket(make_client(settings, settings.s3_timeout_s), settings.s3_bucket)
    source = UrlSource(
        settings.address_policy,
        connect_timeout_s=settings.import_connect_timeout_s,
        read_timeout_s=settings.import_read_timeout_s,
        max_redirects=settings.import_max_redirects,
    )
    jobs = JobsApi(settings.jobs_url, settings.jobs_timeout_s)
    stats = StorageStats()
    policy = settings.retry_policy

    publish_fact = video_publisher(broker, topics.STORAGE_EVENTS)
    limits = ImportLimits(
        max_bytes=settings.import_max_bytes,
        total_timeout_s=settings.import_total_timeout_s,
        s3_timeout_s=settings.s3_timeout_s,
    )
    return Storage(
        settings=settings,
        broker=broker,
        bucket=bucket,
        source=source,
        jobs=jobs,
        stats=stats,
        deletions=DeletionService(bucket, publish_fact, policy, jobs, stats),
        imports=ImportService(bucket, source, jobs, publish_fact, limits, policy, stats),
        # A video's file is at most what an import accepts (the bridge's cap is larger, but
        # a poster is not worth a bigger download).
        posters=PosterService(
            bucket, extract_poster, jobs, publish_fact, policy, settings.import_max_bytes, stats
        ),
        sweeper=Sweeper(
            bucket, jobs, publish_fact, timedelta(seconds=settings.sweep_grace_s), policy, stats
        ),
    )


def create_app(settings: Settings) -> FastAPI:
    storage = build(settings)
    consumers.register(
        storage.broker, storage.deletions, storage.imports, storage.posters, settings
    )

    tasks: dict[str, Task] = {"lag": lambda: watch_consumer_lag(storage.broker, "storage")}
    if settings.sweep_interval_s > 0:
        tasks["sweeper"] = lambda: sweep_periodically(storage.sweeper, settings.sweep_interval_s)
    lifespan = service_lifespan(
        start=[storage.ensure_bucket, storage.broker.start],
        tasks=tasks,
        close=[storage.broker.stop, storage.aclose],
    )
    app = FastAPI(title="OpenV storage", lifespan=lifespan, **INTERNAL_DOCS)
    app.state.storage = storage

    async def s3_ready() -> bool:
        return await storage.bucket.exists()

    install_health(app, {"kafka": broker_check(storage.broker), "s3": s3_ready})

    @admin_router(app).get("/stats", tags=["health"])
    async def stats() -> dict[str, int]:
        return storage.stats.as_dict()

    return app


async def sweep_once(settings: Settings, *, report_facts: bool = True) -> SweepReport:
    """One sweep (the `sweep` command). With `report_facts`, purged deleted videos are
    reported on Kafka as the running service would; without, Kafka is not needed."""
    storage = build(settings, client_id="openv-storage-sweep")
    if not report_facts:
        storage.sweeper.publish_fact = None
    try:
        if report_facts:
            await storage.broker.start()
        return await storage.sweeper.sweep()
    finally:
        if report_facts:
            await storage.broker.stop()
        await storage.aclose()
