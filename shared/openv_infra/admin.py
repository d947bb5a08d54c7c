"""The admin port: what operators and the cluster ask a service, never its clients.

`/metrics`, `/readyz`, internal API documentation and routes a service adds with
`admin_router(app)` are served by a second, small ASGI app on `OPENV_ADMIN_PORT`, in the same
process and event loop as the service (see `serve.py`). The public port keeps `/healthz` only,
so a NetworkPolicy can open the public port to clients and the admin port to the monitoring
namespace and the kubelet alone (deploy/k8s/base/networkpolicies.yaml).
"""

from typing import Any

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from openv_infra.docs_pages import docs_router

#: `FastAPI(**INTERNAL_DOCS)`: the service's own port serves no API documentation; its
#: document, Swagger UI and ReDoc are on the admin port instead.
INTERNAL_DOCS: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None}


def admin_router(app: FastAPI) -> APIRouter:
    """The routes `app`'s admin port serves besides `/metrics` (created on first use)."""
    router: APIRouter | None = getattr(app.state, "admin_router", None)
    if router is None:
        router = APIRouter()
        app.state.admin_router = router
    return router


def create_admin_app(app: FastAPI) -> FastAPI:
    admin = FastAPI(title=f"{app.title} (admin)", **INTERNAL_DOCS)

    @admin.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    admin.include_router(admin_router(app))
    if app.openapi_url is None:
        _serve_docs_of(app, admin)
    return admin


def _serve_docs_of(app: FastAPI, admin: FastAPI) -> None:
    @admin.get("/openapi.json")
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    admin.include_router(docs_router("/openapi.json", app.title))
