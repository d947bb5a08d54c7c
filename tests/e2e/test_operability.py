"""Every service answers /healthz on its port, /readyz and /metrics (with the metrics operators
watch) on its admin port only; internal API documentation is on the admin port too."""

import time
from collections.abc import Callable

import httpx
import pytest

from openv_localstack.stack import SERVICES, LocalStack

pytestmark = pytest.mark.e2e

EXPECTED = {
    "gateway": ["openv_http_requests_total", "openv_kafka_published_messages_total"],
    "jobs": [
        "openv_jobs_decisions_total",
        "openv_jobs_events_recorded_total",
        "openv_jobs_relay_lag_events",
        "openv_jobs_videos",
        "openv_kafka_consumer_lag",
    ],
    "runpod-bridge": [
        "openv_bridge_runpod_call_seconds",
        "openv_bridge_webhooks_total",
        "openv_kafka_consumer_lag",
    ],
    "storage": ["faststream_received_messages_total", "openv_kafka_consumer_lag"],
    "webhooks": [
        "openv_webhooks_backlog",
        "openv_webhooks_oldest_pending_seconds",
        "openv_kafka_consumer_lag",
    ],
}


def test_health_readiness_and_metrics_on_every_service(
    stack: LocalStack, api: httpx.Client, auth: Callable[[str], dict[str, str]]
) -> None:
    # Some traffic first, so the counters have samples.
    headers = auth("operator-check")
    created = api.post(
        "/v1/videos",
        json={"prompt": "metrics", "width": 384, "height": 384, "num_frames": 7},
        headers=headers,
    )
    assert created.status_code == 202
    for service in SERVICES:
        base, admin = stack.url_of(service), stack.admin_url_of(service)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        ready = httpx.get(f"{admin}/readyz", timeout=10)
        assert ready.status_code == 200, (service, ready.text)
        assert ready.json()["status"] == "ok" and all(ready.json()["checks"].values())
        metrics = httpx.get(f"{admin}/metrics", timeout=5)
        assert metrics.status_code == 200
        for name in EXPECTED[service]:
            assert name in metrics.text, (service, name)
    gateway_metrics = httpx.get(f"{stack.admin_url_of('gateway')}/metrics", timeout=5).text
    assert 'route="/v1/videos"' in gateway_metrics
    # Lag samples appear once each consumer has partitions (refreshed every 10 s).
    for service in ("jobs", "runpod-bridge", "storage"):
        deadline = time.monotonic() + 40
        while not lag_samples(httpx.get(f"{stack.admin_url_of(service)}/metrics", timeout=5).text):
            assert time.monotonic() < deadline, f"no consumer lag samples from {service}"
            time.sleep(0.5)


def lag_samples(metrics: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith("openv_kafka_consumer_lag{")]


#: What only operators may ask: never answered on a service's own (client-facing) port.
ADMIN_ONLY = ("/metrics", "/readyz")
INTERNAL_DOCS = ("/docs", "/redoc", "/openapi.json")


def test_admin_routes_are_only_on_the_admin_port(stack: LocalStack) -> None:
    for service in SERVICES:
        base, admin = stack.url_of(service), stack.admin_url_of(service)
        for path in ADMIN_ONLY:
            assert httpx.get(f"{base}{path}", timeout=5).status_code == 404, (service, path)
        # The admin port serves no client route, and not the public liveness probe.
        assert httpx.get(f"{admin}/healthz", timeout=5).status_code == 404, service
        if service == "gateway":
            continue
        for path in INTERNAL_DOCS:
            assert httpx.get(f"{base}{path}", timeout=5).status_code == 404, (service, path)
            assert httpx.get(f"{admin}{path}", timeout=5).status_code == 200, (service, path)
        document = httpx.get(f"{admin}/openapi.json", timeout=5).json()
        assert "/healthz" in document["paths"], service
    jobs_document = httpx.get(f"{stack.admin_url_of('jobs')}/openapi.json", timeout=5).json()
    assert "/internal/videos" in jobs_document["paths"]
    assert httpx.get(f"{stack.url_of('storage')}/stats", timeout=5).status_code == 404
    assert httpx.get(f"{stack.admin_url_of('storage')}/stats", timeout=5).status_code == 200
    # The gateway's OpenAPI document describes the public API: it stays on the public port.
    public = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=5).json()
    assert "/v1/videos" in public["paths"]
    assert not set(ADMIN_ONLY) & set(public["paths"])
