"""A real service process outside `OPENV_ENV=local` with development credentials exits before
it serves, naming the settings and never their values."""

import os
import subprocess
import sys

import httpx
import pytest

from openv_localstack.ports import free_port
from openv_localstack.tokens import LOCAL_JWT_SECRET

pytestmark = pytest.mark.integration

SERVICES = {
    "openv_gateway": ("gateway", ["OPENV_JWT_SECRET", "OPENV_S3_SECRET_KEY"]),
    "openv_jobs": ("jobs", ["OPENV_DATABASE_URL"]),
    "openv_bridge": ("runpod-bridge", ["OPENV_WEBHOOK_SECRET", "OPENV_RUNPOD_API_KEY"]),
    "openv_storage": ("storage", ["OPENV_S3_ACCESS_KEY"]),
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENV_")}
    return {**env, "OTEL_TRACES_EXPORTER": "none", **extra}


@pytest.mark.parametrize("module", SERVICES)
def test_a_service_with_development_defaults_refuses_to_start(module: str) -> None:
    name, expected = SERVICES[module]
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", module],
        env=clean_env(OPENV_PORT=str(port), OPENV_HOST="127.0.0.1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"{name} refuses to start" in result.stderr
    for variable in expected:
        assert variable in result.stderr, (variable, result.stderr)
    assert "Traceback" not in result.stderr
    with pytest.raises(httpx.ConnectError):  # it never listened
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def test_the_refusal_never_prints_the_secret() -> None:
    weak = "not-long-enough-Qz7"
    result = subprocess.run(
        [sys.executable, "-m", "openv_gateway"],
        env=clean_env(OPENV_JWT_SECRET=weak, OPENV_ENV="production"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "OPENV_JWT_SECRET is shorter than 32 bytes" in result.stderr
    output = result.stderr + result.stdout
    assert weak not in output and LOCAL_JWT_SECRET not in output
