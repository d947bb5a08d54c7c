"""The HTTP metrics middleware: route templates as labels, status codes, failures counted."""

from uuid import uuid4

import httpx
from fastapi import FastAPI

from openv_infra.admin import create_admin_app
from openv_infra.metrics import HTTP_LATENCY, HTTP_REQUESTS, install_metrics


def count(service: str, route: str, status: str, method: str = "GET") -> float:
    return float(HTTP_REQUESTS.labels(service, method, route, status)._value.get())


async def test_requests_are_counted_by_route_template_and_status() -> None:
    service = f"test-{uuid4().hex[:8]}"
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    install_metrics(app, service)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/things/a")).status_code == 200
        assert (await client.get("/things/b")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/metrics")).status_code == 404  # on the admin port only
    admin = httpx.ASGITransport(create_admin_app(app))
    async with httpx.AsyncClient(transport=admin, base_url="http://test") as client:
        assert "openv_http_requests_total" in (await client.get("/metrics")).text

    assert count(service, "/things/{thing_id}", "200") == 2
    assert count(service, "unmatched", "404") == 2  # /nowhere and /metrics on the service's port
    assert count(service, "/boom", "500") == 1
    assert count(service, "/metrics", "200") == 0  # scrapes are not traffic
    latency = HTTP_LATENCY.labels(service, "GET", "/things/{thing_id}")
    assert latency._sum.get() > 0


async def test_a_made_up_method_does_not_make_a_label_of_its_own() -> None:
    """Any token is a valid HTTP method; each one may not become a new series (memory)."""
    service = f"test-{uuid4().hex[:8]}"
    app = FastAPI()
    install_metrics(app, service)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for n in range(3):
            await client.request(f"FOO{n}", "/anything")
    assert count(service, "unmatched", "404", method="OTHER") == 3
    families = {m.name: m for m in HTTP_REQUESTS.collect()}
    methods = {s.labels["method"] for m in families.values() for s in m.samples}
    assert not any(method.startswith("FOO") for method in methods)
