"""Which client libraries setup_tracing instruments: asyncpg only when spans are recorded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import asyncpg
from openv_shared.telemetry import setup_tracing
setup_tracing("probe")
print(hasattr(asyncpg.Connection.execute, "__wrapped__"))
"""


def _asyncpg_instrumented(env: dict[str, str]) -> bool:
    # A process of its own: the tracer provider and the instrumentation are process-wide.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    return out.strip().splitlines()[-1] == "True"


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
