"""Every service answers /healthz, /readyz and /metrics, with the metrics operators watch."""

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
        base = stack.url_of(service)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, (service, ready.text)
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        for name in EXPECTED[service]:
            assert name in metrics.text, (service, name)
    gateway_metrics = httpx.get(f"{stack.gateway_url}/metrics", timeout=5).text
    assert 'route="/v1/videos"' in gateway_metrics
    # Lag samples appear once each consumer has partitions (refreshed every 10 s).
    for service in ("jobs", "runpod-bridge", "storage"):
        deadline = time.monotonic() + 40
        while not lag_samples(httpx.get(f"{stack.url_of(service)}/metrics", timeout=5).text):
            assert time.monotonic() < deadline, f"no consumer lag samples from {service}"
            time.sleep(0.5)


def lag_samples(metrics: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith("openv_kafka_consumer_lag{")]
