"""Run a service's FastAPI app under uvicorn: the one entry point every `__main__` uses."""

import asyncio
import contextlib
import gc
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar

import sniffio
import uvicorn
from fastapi import FastAPI

from openv_infra.admin import create_admin_app
from openv_infra.logging import configure_logging
from openv_infra.metrics import install_metrics
from openv_infra.settings import BaseServiceSettings, refuse_development_defaults
from openv_infra.telemetry import instrument_app, setup_tracing, shutdown_tracing

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
    admin = create_admin_app(app)
    try:
        _serve(app, admin, settings)
    finally:
        shutdown_tracing()


def _serve(app: FastAPI, admin: FastAPI, settings: BaseServiceSettings) -> None:
    # This thread runs nothing but the asyncio loop: say so to sniffio, which httpcore asks
    # on every lock and event of every request and which otherwise re-imports asyncio and
    # looks up the current task each time (a twentieth of the bridge's CPU under load).
    sniffio.thread_local.name = "asyncio"
    admin_server = _AdminServer(
        _config(admin, settings.host, settings.admin_port_or_default, service=False)
    )
    server = _ServiceServer(_config(app, settings.host, settings.port, service=True), admin_server)
    server.run()


def _config(app: FastAPI, host: str, port: int, *, service: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # The admin app has no lifespan: the service's app starts and stops what both use.
        lifespan="auto" if service else "off",
        # Open SSE streams would otherwise hold a shutdown (and a rolling deploy) forever.
        timeout_graceful_shutdown=5 if service else None,
    )


class _AdminServer(uvicorn.Server):
    """The admin port's server: the service's server owns the signals and stops this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _ServiceServer(uvicorn.Server):
    """The service's server, which runs its admin server beside it in the same event loop:
    started first (a taken admin port fails the start, like a taken service port), stopped
    last (readiness and metrics answer while the service drains)."""

    def __init__(self, config: uvicorn.Config, admin: uvicorn.Server) -> None:
        super().__init__(config)
        self.admin = admin
        self._admin_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._admin_task = asyncio.create_task(self.admin.serve(), name="admin-server")
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        self.admin.should_exit = True
        if self._admin_task is not None:
            await self._admin_task
