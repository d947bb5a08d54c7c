"""Run a service's FastAPI app under uvicorn: the one entry point every `__main__` uses."""

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from openv_shared.logging import configure_logging
from openv_shared.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)


def run_service(name: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    configure_logging(name, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )
