"""Composition root of the RunPod bridge."""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.adapters.submissions import Submissions
from openv_bridge.config import Settings
from openv_bridge.entrypoints import consumers, webhooks
from openv_bridge.service_layer.bridge import BridgeService
from openv_shared import topics
from openv_shared.contracts import Envelope
from openv_shared.db import make_engine
from openv_shared.kafka import make_broker, publish
from openv_shared.s3 import make_minio


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings)
    broker = make_broker(settings, "openv-runpod-bridge")
    runpod = RunPodClient(
        settings.runpod_base_url,
        settings.runpod_endpoint_id,
        settings.runpod_api_key.get_secret_value(),
        timeout_s=settings.runpod_timeout_s,
    )
    submissions = Submissions(engine)
    objects = ObjectStore(
        make_minio(settings), make_minio(settings, public=True), settings.s3_bucket
    )

    async def publish_fact(envelope: Envelope) -> None:
        await publish(broker, topics.RUNPOD_EVENTS, envelope, key=str(envelope.data["video_id"]))

    bridge = BridgeService(settings, runpod, submissions, objects, publish_fact)
    consumers.register(broker, bridge, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await runpod.aclose()
            await engine.dispose()

    app = FastAPI(title="OpenV RunPod bridge", lifespan=lifespan)
    app.state.bridge = bridge
    app.include_router(webhooks.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
