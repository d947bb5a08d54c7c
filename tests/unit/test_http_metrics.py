"""The HTTP metrics middleware: route templates as labels, status codes, failures counted."""

from uuid import uuid4

import httpx
from fastapi import FastAPI

from openv_infra.admin import create_admin_app
from openv_infra.metrics import install_metrics, registry


def count(service: str, route: str, status: str, method: str = "GET") -> float:
    labels = {"service": service, "method": method, "route": route, "status": status}
    return registry().get_sample_value("openv_http_requests_total", labels) or 0.0


def latency(service: str, route: str, sample: str, **extra: str) -> float | None:
    labels = {"service": service, "method": "GET", "route": route, **extra}
    return registry().get_sample_value(f"openv_http_request_seconds{sample}", labels)


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
    things = "/things/{thing_id}"
    assert (latency(service, things, "_sum") or 0) > 0
    assert latency(service, things, "_count") == 2
    # Buckets are cumulative up to +Inf, which holds every request.
    assert latency(service, things, "_bucket", le="+Inf") == 2
    assert latency(service, things, "_bucket", le="60.0") == 2


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
    methods = {
        sample.labels.get("method", "")
        for family in registry().collect()
        if family.name == "openv_http_requests"
        for sample in family.samples
    }
    assert "OTHER" in methods
    assert not any(method.startswith("FOO") for method in methods)


def test_the_histogram_is_cumulative_and_a_bound_is_inclusive() -> None:
    from openv_infra.metrics import HTTP_FIGURES, _Series

    key = (f"test-{uuid4().hex[:8]}", "GET", "/r")
    series = HTTP_FIGURES.series[key] = _Series()
    try:
        for status, seconds in ((200, 0.005), (200, 0.3), (500, 100.0)):
            series.observe(status, seconds)
        service, _, route = key

        def bucket(le: str) -> float | None:
            return latency(service, route, "_bucket", le=le)

        assert [bucket(le) for le in ("0.005", "0.25", "0.5", "60.0", "+Inf")] == [1, 1, 2, 2, 3]
        assert latency(service, route, "_count") == 3
        assert latency(service, route, "_sum") == 100.305
        assert (count(service, route, "200"), count(service, route, "500")) == (2, 1)
    finally:
        del HTTP_FIGURES.series[key]
