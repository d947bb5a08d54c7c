"""Prometheus metrics: one registry per process, `/metrics` on every service's HTTP port.

Every service gets HTTP request counts and latencies by route and status here, and Kafka
message metrics from FastStream's Prometheus middleware (see `kafka.make_broker`); services
add their own (decisions, webhook outcomes, relay lag, RunPod latency) next to their code.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "openv_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "openv_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def registry() -> CollectorRegistry:
    return REGISTRY


def install_metrics(app: FastAPI, service: str) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: bounded label values.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        if route == "/metrics":
            return response
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, request.method, route).observe(time.perf_counter() - started)
        return response


CONSUMER_LAG = Gauge(
    "openv_kafka_consumer_lag",
    "Messages behind the partition's high watermark, per consumer group partition",
    ["service", "group", "topic", "partition"],
)


async def watch_consumer_lag(broker: KafkaBroker, service: str, every_s: float = 10.0) -> None:
    """Refresh the lag gauge from each subscriber's consumer (high watermark - position).

    The high watermark comes with every fetch response, so this asks the broker nothing extra.
    """
    while True:
        for subscriber in broker.subscribers:
            consumer: Any = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            group = str(getattr(consumer, "_group_id", None) or "-")
            try:
                for tp in consumer.assignment():
                    highwater = consumer.highwater(tp)
                    if highwater is None:
                        continue
                    # position() may wait for an offset lookup; never let it stall the loop.
                    position = await asyncio.wait_for(consumer.position(tp), 2.0)
                    CONSUMER_LAG.labels(service, group, tp.topic, str(tp.partition)).set(
                        max(0, highwater - position)
                    )
            except Exception as exc:  # a rebalance may take partitions away mid-loop
                log.info("consumer lag of %s not measured: %r", service, exc)
        await asyncio.sleep(every_s)
