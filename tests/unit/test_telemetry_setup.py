"""Which client libraries setup_tracing instruments: asyncpg only when spans are recorded;
HTTP clients to other OpenV services always, to third parties only when spans are recorded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import asyncpg
from openv_infra.http import async_client
from openv_infra.telemetry import setup_tracing
setup_tracing("probe")
traced = lambda client: getattr(client, "_is_instrumented_by_opentelemetry", False)
print(
    hasattr(asyncpg.Connection.execute, "__wrapped__"),
    traced(async_client(internal=True)),
    traced(async_client(internal=False)),
)
"""


def _probe(env: dict[str, str]) -> list[bool]:
    # A process of its own: the tracer provider and the instrumentation are process-wide.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [word == "True" for word in out.strip().splitlines()[-1].split()]


def _asyncpg_instrumented(env: dict[str, str]) -> bool:
    return _probe(env)[0]


@pytest.fixture
def base_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER", "OPENV_TRACE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


def test_asyncpg_is_not_wrapped_when_no_span_is_recorded(base_env: dict[str, str]) -> None:
    assert not _asyncpg_instrumented(base_env)


def test_asyncpg_is_wrapped_when_spans_are_exported(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    assert _asyncpg_instrumented({**base_env, "OPENV_TRACE_DIR": str(tmp_path)})


def test_asyncpg_is_wrapped_when_a_sampler_is_chosen(base_env: dict[str, str]) -> None:
    assert _asyncpg_instrumented({**base_env, "OTEL_TRACES_SAMPLER": "always_on"})


def test_only_internal_http_clients_are_traced_when_no_span_is_recorded(
    base_env: dict[str, str],
) -> None:
    _, internal, third_party = _probe(base_env)
    assert internal
    assert not third_party


def test_every_http_client_is_traced_when_spans_are_exported(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    _, internal, third_party = _probe({**base_env, "OPENV_TRACE_DIR": str(tmp_path)})
    assert internal
    assert third_party
