"""The admin app: /metrics, /readyz and internal API docs, apart from the service's own app."""

import httpx
from fastapi import FastAPI

from openv_infra.admin import INTERNAL_DOCS, admin_router, create_admin_app
from openv_infra.health import install_health
from openv_infra.settings import BaseServiceSettings


def internal_app(ready: bool) -> FastAPI:
    app = FastAPI(title="internal", **INTERNAL_DOCS)

    @app.get("/internal/things")
    async def things() -> list[str]:
        return []

    async def dependency() -> bool:
        return ready

    async def broken() -> bool:
        raise ConnectionError("refused")

    install_health(app, {"dependency": dependency, "broken": broken} if not ready else {})
    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        return await c.get(path)


async def test_service_port_keeps_liveness_only() -> None:
    app = internal_app(ready=True)
    assert (await get(app, "/healthz")).status_code == 200
    for path in ("/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"):
        assert (await get(app, path)).status_code == 404, path


async def test_admin_port_serves_readiness_metrics_and_internal_docs() -> None:
    app = internal_app(ready=True)
    admin = create_admin_app(app)
    ready = await get(admin, "/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "checks": {}}
    assert "python_info" in (await get(admin, "/metrics")).text
    document = (await get(admin, "/openapi.json")).json()
    assert "/internal/things" in document["paths"]
    assert "/openapi.json" in (await get(admin, "/docs")).text
    assert (await get(admin, "/redoc")).status_code == 200
    assert (await get(admin, "/healthz")).status_code == 404
    assert (await get(admin, "/internal/things")).status_code == 404


async def test_admin_readiness_names_failed_checks() -> None:
    admin = create_admin_app(internal_app(ready=False))
    ready = await get(admin, "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"dependency": False, "broken": False},
    }


async def test_public_docs_stay_on_the_service_port_and_extra_admin_routes() -> None:
    app = FastAPI(title="public")

    @admin_router(app).get("/stats")
    async def stats() -> dict[str, int]:
        return {"n": 1}

    admin = create_admin_app(app)
    assert (await get(app, "/openapi.json")).status_code == 200
    assert (await get(app, "/stats")).status_code == 404
    assert (await get(admin, "/openapi.json")).status_code == 404  # not duplicated
    assert (await get(admin, "/stats")).json() == {"n": 1}


def test_admin_port_defaults_to_port_plus_1000() -> None:
    assert BaseServiceSettings(port=8010).admin_port_or_default == 9010
    assert BaseServiceSettings(port=8010, admin_port=7000).admin_port_or_default == 7000
