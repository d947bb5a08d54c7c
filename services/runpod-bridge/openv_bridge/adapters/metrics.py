"""The bridge's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Gauge, Histogram

#: Outcomes: accepted, read_from_status (too large to read: /status asked instead), or the
#: refusal code (not_found, invalid_body, unknown_job, unavailable).
WEBHOOKS = Counter(
    "openv_bridge_webhooks_total", "RunPod webhooks received, by outcome", ["outcome"]
)
RUNPOD_CALLS = Histogram(
    "openv_bridge_runpod_call_seconds",
    "Latency of one RunPod HTTP call (each attempt), by operation and answer",
    ["operation", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

RUNPOD_THROTTLED = Counter(
    "openv_bridge_runpod_throttled_total",
    "RunPod answers 429 (rate limit), by operation",
    ["operation"],
)
RUNPOD_MISCONFIGURED = Gauge(
    "openv_bridge_runpod_misconfigured",
    "1 while RunPod refuses the bridge's API key or endpoint (401/403, or 404 on /run, /health)",
)


@asynccontextmanager
async def timed_call(operation: str) -> AsyncIterator[dict[str, str]]:
    """Time one RunPod call; the caller sets `labels["status"]` (HTTP code or error name)."""
    labels = {"status": "error"}
    started = time.perf_counter()
    try:
        yield labels
    finally:
        RUNPOD_CALLS.labels(operation, labels["status"]).observe(time.perf_counter() - started)
