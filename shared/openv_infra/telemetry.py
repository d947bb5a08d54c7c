"""Tracing for every service: one setup, configured by the standard `OTEL_*` variables.

- `OTEL_TRACES_EXPORTER`: `otlp` (to `OTEL_EXPORTER_OTLP_ENDPOINT`, http/protobuf), `console`,
  or `none` (the local default: then spans are not recorded at all, only propagated).
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: the SDK's standard sampling (default: every
  span when exporting; e.g. `parentbased_traceidratio` and `0.05` under heavy load).
- `OPENV_TRACE_DIR`: also write finished spans as JSON lines to `<dir>/<service>.jsonl` (the
  local stack's default is `.stack/traces`; the trace test reads them; off when unset).

FastAPI, httpx (see `instrument_http_client`) and asyncpg are instrumented (FastAPI by a
middleware that only makes the trace context current while no span is recorded). Kafka hops are
traced by `kafka.publish_many` (a PRODUCER span, its context in the message headers) and
FastStream's telemetry middleware on the consuming side; envelopes carry the context of the
request that caused them (`Envelope.trace_context`), so events relayed later from the log
continue the same trace.
"""

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Status

from openv_infra.redact import redact, redact_attributes
from openv_infra.trace_context import TraceContextMiddleware

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None
#: Whether this process records spans (an exporter, or a sampler chosen): see setup_tracing.
_recording = False


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (thread-safe, flushed per batch)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "service": span.resource.attributes.get("service.name"),
                        "name": span.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "kind": span.kind.name,
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        # What an OTLP exporter would ship too (the redaction test reads it).
                        "attributes": dict(span.attributes or {}),
                        "events": [
                            {"name": e.name, "attributes": dict(e.attributes or {})}
                            for e in span.events
                        ],
                        "status": span.status.description,
                    },
                    default=str,
                )
            )
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
        return SpanExportResult.SUCCESS


class RedactingSpanExporter(SpanExporter):
    """Hands `inner` each span with secrets in URLs redacted (see `openv_infra.redact`):
    the webhook token in the server span's `http.target`/`url.query`, a presigned signature
    in a client span's `url.full`, either in an exception event's message."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redacted_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes),
        events=[Event(e.name, redact_attributes(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def setup_tracing(service: str) -> TracerProvider:
    """Install the process-wide tracer provider once and instrument the client libraries."""
    global _provider, _recording
    if _provider is not None:
        return _provider
    exporters: list[SpanExporter] = []
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower()
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    elif exporter == "console":
        exporters.append(ConsoleSpanExporter())
    trace_dir = os.environ.get("OPENV_TRACE_DIR")
    if trace_dir:
        os.makedirs(trace_dir, exist_ok=True)
        exporters.append(JsonLinesSpanExporter(os.path.join(trace_dir, f"{service}.jsonl")))
    # Spans nobody exports are not recorded (unless OTEL_TRACES_SAMPLER says otherwise): trace
    # context still propagates, but an instrumented SQL statement or HTTP call stops paying
    # for attributes and timing (measured: ~40 % of the jobs service's CPU under load).
    # With an exporter the SDK's sampler applies (OTEL_TRACES_SAMPLER, default: every span).
    sampler = None if exporters or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"openv-{service}"}), sampler=sampler
    )
    for span_exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(span_exporter)))
    trace.set_tracer_provider(provider)
    _recording = sampler is not ALWAYS_OFF
    if _recording:
        # A statement's span carries no context onward: unrecorded, wrapping every statement
        # was pure cost (a seventh of the bridge's busy time under create load, by py-spy).
        AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _provider = provider
    return provider


def instrument_http_client(client: httpx.AsyncClient, *, internal: bool) -> None:
    """Trace a client's calls (a CLIENT span each, and the context in its headers).

    Calls between the services always are: the callee's spans and log lines join the
    caller's trace, recorded or not. Calls to third parties (RunPod, a JWKS URL, a result's
    download) only when spans are recorded: unrecorded, the wrapper propagated nothing we
    read and cost 7 % of the bridge's CPU under create load.
    """
    if internal or _recording:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=_provider)


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    # FastAPI's native telemetry (a request span, one per dependency, endpoint and
    # serialization; OpenTelemetry metrics and logs, which no service exports): off, the
    # instrumentation below traces requests, and a request no longer pays for its checks.
    native = app._telemetry
    native["tracing"] = native["operation_spans"] = native["metrics"] = native["logs"] = False
    if not _recording:
        # Nothing recorded: only the request's trace context matters (`trace_context`).
        app.add_middleware(TraceContextMiddleware)
        return
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        # No child span per ASGI message (two or three per request): the request's span
        # times it already, and each cost a span start even unrecorded.
        exclude_spans=["receive", "send"],
    )


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


@contextmanager
def continued(trace_context: dict[str, str]) -> Iterator[None]:
    """Make the stored context current, so spans started inside join that trace."""
    token = context.attach(propagate.extract(trace_context))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def handling(message_type: str, trace_context: dict[str, str]) -> Iterator[None]:
    """A CONSUMER span for handling one message of a batch, in the message's own trace: the
    span a batch consumer gets cannot belong to the traces of all its messages."""
    tracer = trace.get_tracer("openv.consumers")
    with (
        continued(trace_context),
        tracer.start_as_current_span(f"{message_type} handle", kind=trace.SpanKind.CONSUMER),
    ):
        yield


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, for log lines."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
