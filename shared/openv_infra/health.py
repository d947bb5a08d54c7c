"""`/healthz` (the process is alive; public port) and `/readyz` (its dependencies answer; admin
port, see `admin.py`) for every service."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from openv_infra.admin import admin_router

if TYPE_CHECKING:  # the services without a database do not load SQLAlchemy (~19 MB of RSS)
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    """The answer of `/healthz` (documented in each service's OpenAPI document)."""

    status: str


def install_health(app: FastAPI, checks: dict[str, Check]) -> None:
    @app.get(
        "/healthz",
        operation_id="getHealth",
        tags=["health"],
        response_model=Health,
        summary="Liveness",
    )
    async def healthz() -> Health:
        return Health(status="ok")

    install_readiness(app, checks)


def install_readiness(app: FastAPI, checks: dict[str, Check]) -> None:
    """`/readyz` on the admin port: 200 when every check passes, else 503 naming the failures."""

    @admin_router(app).get("/readyz", operation_id="getReadiness", tags=["health"])
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(_run(name, check) for name, check in checks.items()))
        status = dict(zip(checks, results, strict=True))
        ok = all(results)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": status},
            status_code=200 if ok else 503,
        )


async def _run(name: str, check: Check) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready"; say which
        log.warning("readiness check %s failed: %s", name, exc)
        return False


def database_check(engine: "AsyncEngine") -> Check:
    from sqlalchemy import text

    async def check() -> bool:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    return check


def broker_check(broker: KafkaBroker) -> Check:
    async def check() -> bool:
        return await broker.ping(CHECK_TIMEOUT_S)

    return check
