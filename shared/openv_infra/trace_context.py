"""The trace context of each HTTP request, when this process records no spans.

With spans unrecorded (`telemetry.setup_tracing`'s default), all a server span did for a
request was make a trace context current: the caller's (from `traceparent`), or a new trace.
That context is what matters: the internal HTTP clients send it on to the jobs service,
envelopes carry it into Kafka, log lines name its ids. OpenTelemetry's FastAPI
instrumentation did it at a cost (span attributes, a second route lookup, its own metrics)
measured at about a sixth of a cached `GET /v1/videos/{id}`; this middleware does only the
context, with the same (non-recording) span the SDK's sampler makes. When spans are recorded,
`telemetry.instrument_app` uses the full instrumentation instead.
"""

from opentelemetry import context, propagate, trace
from starlette.types import ASGIApp, Receive, Scope, Send


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer
        # The headers the configured propagators read (OTEL_PROPAGATORS; W3C by default).
        self.fields = frozenset(field.encode() for field in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in self.fields
        }
        parent = propagate.extract(carrier) if carrier else None
        span = self.tracer.start_span("HTTP", parent, kind=trace.SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)
            span.end()
