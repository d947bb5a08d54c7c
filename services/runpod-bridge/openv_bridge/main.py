"""Composition root of the RunPod bridge."""

from typing import Any

from fastapi import FastAPI

from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.adapters.runpod_limits import route_limits
from openv_bridge.adapters.submissions import Submissions
from openv_bridge.config import Settings
from openv_bridge.entrypoints import consumers, webhooks
from openv_bridge.service_layer.bridge import BridgeService
from openv_bridge.service_layer.reconciler import Reconciler
from openv_contracts import topics
from openv_infra.admin import INTERNAL_DOCS
from openv_infra.db import make_engine
from openv_infra.health import Check, broker_check, database_check, install_health
from openv_infra.kafka import make_broker
from openv_infra.lifecycle import lifespan as service_lifespan
from openv_infra.metrics import watch_consumer_lag
from openv_infra.publishing import video_publisher
from openv_infra.s3 import make_minio


def runpod_client_options(settings: Settings) -> dict[str, Any]:
    """The RunPod client's keyword arguments from the settings (all but where it is)."""
    return {
        "timeout_s": settings.runpod_timeout_s,
        "max_attempts": settings.runpod_max_attempts,
        "backoff_s": settings.runpod_backoff_s,
        "retry_after_max_s": settings.runpod_retry_after_max_s,
        # The most calls in flight at once: a consumer batch's submissions and the reconciler's.
        "max_connections": settings.submit_concurrency + settings.reconcile_concurrency,
        "limits": route_limits(
            settings.runpod_rate_window_s,
            settings.runpod_run_per_window,
            settings.runpod_run_concurrency,
            settings.runpod_status_per_window,
            settings.runpod_cancel_per_window,
            settings.runpod_cancel_concurrency,
        ),
        "limit_max_wait_s": min(settings.runpod_limit_max_wait_s, settings.submit_timeout_s / 2),
        "throttle_jitter_s": settings.runpod_throttle_jitter_s,
        "max_answer_bytes": settings.runpod_answer_max_bytes,
    }


def make_runpod_client(settings: Settings) -> RunPodClient:
    return RunPodClient(
        settings.runpod_base_url,
        settings.runpod_endpoint_id,
        settings.runpod_api_key.get_secret_value(),
        **runpod_client_options(settings),
    )


def runpod_check(runpod: RunPodClient) -> Check:
    """Not ready while RunPod refuses our key or endpoint: nothing can be submitted."""

    async def check() -> bool:
        return not runpod.access.misconfigured

    return check


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings)
    broker = make_broker(settings, "openv-runpod-bridge", publishes=(topics.RUNPOD_EVENTS,))
    runpod = make_runpod_client(settings)
    submissions = Submissions(engine)
    objects = ObjectStore(
        make_minio(settings), make_minio(settings, public=True), settings.s3_bucket
    )

    publish_fact = video_publisher(broker, topics.RUNPOD_EVENTS)
    bridge = BridgeService(settings, runpod, submissions, objects, publish_fact)
    reconciler = Reconciler(bridge, submissions, settings)
    consumers.register(broker, bridge, settings)

    lifespan = service_lifespan(
        start=[broker.start],
        tasks={
            # State lives in Postgres: after a restart this picks up every job still in flight.
            "reconciler": reconciler.run_forever,
            "lag": lambda: watch_consumer_lag(broker, "runpod-bridge"),
        },
        close=[broker.stop, runpod.aclose, engine.dispose],
    )
    app = FastAPI(title="OpenV RunPod bridge", lifespan=lifespan, **INTERNAL_DOCS)
    app.state.bridge = bridge
    app.state.reconciler = reconciler
    app.include_router(webhooks.router)

    # RunPod being down is no readiness condition (an unready bridge would miss its webhooks),
    # but a key or endpoint RunPod refuses is: no video can go anywhere until it is fixed.
    install_health(
        app,
        {
            "database": database_check(engine),
            "kafka": broker_check(broker),
            "runpod": runpod_check(runpod),
        },
    )

    return app
