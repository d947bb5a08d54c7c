"""Prometheus metrics: one registry per process, `/metrics` on every service's admin port.

Every service gets HTTP request counts and latencies by route and status here, consumed
Kafka messages from FastStream's Prometheus middleware (see `kafka.make_broker`) and published
ones from `kafka.publish_many`; services add their own (decisions, webhook outcomes, relay
lag, RunPod latency) next to their code.
"""

import asyncio
import logging
import time
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """Measure `app`'s requests; the registry is served on the admin port (`admin.py`), whose
    scrapes and probes are not traffic and are not measured."""
    app.add_middleware(_Measure, service=service)


class _Measure:
    """Counts requests and observes their latency up to the response's headers (an SSE stream
    is not one long request). Plain ASGI: Starlette's BaseHTTPMiddleware costs about a
    millisecond per request in a task group and memory streams."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        # The labelled children per (method, route, status): `labels()` takes a lock and
        # checks its values on every call. Bounded as the label values are.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def measured(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                self._observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, measured)
        finally:
            if not answered:  # the app failed before answering: the server answers 500
                self._observe(scope, 500, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        # The route template, not the raw path: bounded label values.
        route = getattr(scope.get("route"), "path", "unmatched")
        # Bounded too: a client may send any token as its method (answered 405, unthrottled).
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[(method, route, status)] = (
                HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                HTTP_LATENCY.labels(self.service, method, route),
            )
        children[0].inc()
        children[1].observe(seconds)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
