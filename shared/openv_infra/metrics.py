"""Prometheus metrics: one registry per process, `/metrics` on every service's admin port.

Every service gets HTTP request counts and latencies by route and status here, consumed
Kafka messages from FastStream's Prometheus middleware (see `kafka.make_broker`) and published
ones from `kafka.publish_many`; services add their own (decisions, webhook outcomes, relay
lag, RunPod latency) next to their code.
"""

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Upper bounds of the request latency histogram (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Their `le` labels, as prometheus_client writes them.
_BOUNDS = tuple(floatToGoString(b) for b in LATENCY_BUCKETS)  # type: ignore[no-untyped-call]


class _Series:
    """The requests of one (service, method, route): a count per status, latency buckets."""

    __slots__ = ("buckets", "by_status", "count", "sum")

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, status: int, seconds: float) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.count += 1
        self.sum += seconds
        bucket = bisect_left(LATENCY_BUCKETS, seconds)
        if bucket < len(LATENCY_BUCKETS):
            self.buckets[bucket] += 1


class _HttpFigures(Collector):
    """`openv_http_requests_total` and `openv_http_request_seconds`, counted in plain numbers
    and turned into metrics when scraped. The event loop is their only writer (the admin
    port's scrape runs on it too), so prometheus_client's locked counters and histograms, a
    third of the middleware's cost per request (issue #23), buy nothing here."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], _Series] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "openv_http_requests",
            "HTTP requests handled",
            labels=["service", "method", "route", "status"],
        )
        latency = HistogramMetricFamily(
            "openv_http_request_seconds",
            "HTTP request latency",
            labels=["service", "method", "route"],
        )
        for (service, method, route), series in list(self.series.items()):
            for status, count in list(series.by_status.items()):
                requests.add_metric([service, method, route, str(status)], count)
            cumulative = accumulate(series.buckets)
            buckets = [(b, float(c)) for b, c in zip(_BOUNDS, cumulative, strict=True)]
            latency.add_metric(
                [service, method, route],
                buckets=[*buckets, ("+Inf", float(series.count))],
                sum_value=series.sum,
            )
        yield requests
        yield latency


HTTP_FIGURES = _HttpFigures()
REGISTRY.register(HTTP_FIGURES)


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
        # Per (method, route): bounded as the label values are.
        self._series: dict[tuple[str, str], _Series] = {}

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
        series = self._series.get((method, route))
        if series is None:
            series = HTTP_FIGURES.series.setdefault((self.service, method, route), _Series())
            self._series[(method, route)] = series
        series.observe(status, seconds)


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
