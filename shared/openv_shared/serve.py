"""Run a service's FastAPI app under uvicorn: the one entry point every `__main__` uses."""

import gc
from collections.abc import Callable
from typing import TypeVar

import sniffio
import uvicorn
from fastapi import FastAPI

from openv_shared.logging import configure_logging
from openv_shared.metrics import install_metrics
from openv_shared.settings import BaseServiceSettings, refuse_development_defaults
from openv_shared.telemetry import instrument_app, setup_tracing, shutdown_tracing

S = TypeVar("S", bound=BaseServiceSettings)


def tune_gc() -> None:
    """Fewer cyclic collections for a long-running service.

    The objects built at start-up (modules, models, the app) are moved out of the collector's
    sight, and the youngest generation is collected after 50,000 allocations instead of 700:
    batch handlers allocate many short-lived objects (none of them cyclic), and with the
    default every batch paid for several full scans of the heap (measured: about a fifth of the
    jobs service's decision path, see docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_service(name: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    # Before anything connects or listens: production never runs on development credentials.
    refuse_development_defaults(name, settings)
    configure_logging(name, settings.log_level)
    provider = setup_tracing(name)
    app = create_app(settings)
    tune_gc()
    instrument_app(app, provider)
    install_metrics(app, name)
    try:
        _serve(app, settings)
    finally:
        shutdown_tracing()


def _serve(app: FastAPI, settings: BaseServiceSettings) -> None:
    # This thread runs nothing but the asyncio loop: say so to sniffio, which httpcore asks
    # on every lock and event of every request and which otherwise re-imports asyncio and
    # looks up the current task each time (a twentieth of the bridge's CPU under load).
    sniffio.thread_local.name = "asyncio"
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Open SSE streams would otherwise hold a shutdown (and a rolling deploy) forever.
        timeout_graceful_shutdown=5,
    )
