"""Composition root of the storage service."""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from openv_shared import topics
from openv_shared.contracts import Envelope
from openv_shared.kafka import make_broker, publish
from openv_shared.s3 import make_minio
from openv_storage.adapters.bucket import Bucket
from openv_storage.config import Settings
from openv_storage.entrypoints import consumers
from openv_storage.service_layer.cleanup import StorageService


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, "openv-storage")
    bucket = Bucket(make_minio(settings), settings.s3_bucket)

    async def publish_fact(envelope: Envelope) -> None:
        await publish(broker, topics.STORAGE_EVENTS, envelope, key=str(envelope.data["video_id"]))

    service = StorageService(bucket, publish_fact)
    consumers.register(broker, service, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bucket.ensure()
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    app = FastAPI(title="OpenV storage", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
