"""Run a service's FastAPI app under uvicorn: the one entry point every `__main__` uses."""

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from openv_shared.logging import configure_logging
from openv_shared.metrics import install_metrics
from openv_shared.settings import BaseServiceSettings
from openv_shared.telemetry import instrument_app, setup_tracing, shutdown_tracing

S = TypeVar("S", bound=BaseServiceSettings)


def run_service(name: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    configure_logging(name, settings.log_level)
    provider = setup_tracing(name)
    app = create_app(settings)
    instrument_app(app, provider)
    install_metrics(app, name)
    try:
        _serve(app, settings)
    finally:
        shutdown_tracing()


def _serve(app: FastAPI, settings: BaseServiceSettings) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Open SSE streams would otherwise hold a shutdown (and a rolling deploy) forever.
        timeout_graceful_shutdown=5,
    )
