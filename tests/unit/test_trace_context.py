"""The request's trace context while no span is recorded (issue #23): the caller's trace goes
on (to the jobs service, into envelopes), a request without one starts a trace of its own."""

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from openv_infra import telemetry
from openv_infra.trace_context import TraceContextMiddleware

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    app = FastAPI()

    @app.get("/outgoing")
    async def outgoing() -> dict[str, str]:
        """What an internal HTTP call or an envelope would carry from here."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    monkeypatch.setattr(telemetry, "_recording", False)
    telemetry.instrument_app(app, TracerProvider(sampler=ALWAYS_OFF))
    return app


async def _outgoing(app: FastAPI, headers: dict[str, str]) -> dict[str, str]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/outgoing", headers=headers)
    assert response.status_code == 200
    carried: dict[str, str] = response.json()
    return carried


async def test_unrecorded_requests_get_the_light_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _app(monkeypatch)
    assert [m.cls for m in app.user_middleware] == [TraceContextMiddleware]  # type: ignore[comparison-overlap]


async def test_the_callers_trace_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    carried = await _outgoing(_app(monkeypatch), {"traceparent": PARENT, "baggage": "k=v"})
    version, trace_id, span_id, _flags = carried["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    assert span_id != "00f067aa0ba902b7"  # the request's own span, a child of the caller's
    assert carried["baggage"] == "k=v"


async def test_a_request_without_a_trace_starts_one(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch)
    first = (await _outgoing(app, {}))["traceparent"].split("-")[1]
    second = (await _outgoing(app, {}))["traceparent"].split("-")[1]
    assert first != second and int(first, 16) != 0
