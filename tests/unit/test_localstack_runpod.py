"""`python3 dev.py up` against a real RunPod endpoint: option parsing and the services' env.

Nothing here starts a server or contacts RunPod: the options and the environment each service
would be started with are computed, as `up` computes them.
"""

import os
import re
import stat
from pathlib import Path

import pytest

from openv_localstack.__main__ import parser, runpod_lines, stack_options
from openv_localstack.realrunpod import RunPodConfigError
from openv_localstack.stack import RUNPOD_API_KEY, LocalStack, StackOptions

KEY = "rpa_user_key_0123456789"
PUBLIC = "https://bridge-abc.trycloudflare.com"
RUNPOD_ENV = (
    "OPENV_RUNPOD_BASE_URL",
    "OPENV_RUNPOD_ENDPOINT_ID",
    "OPENV_RUNPOD_API_KEY",
    "OPENV_WEBHOOK_BASE_URL",
    "OPENV_WEBHOOK_SECRET",
    "OPENV_S3_PUBLIC_ENDPOINT",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RUNPOD_ENV:
        monkeypatch.delenv(name, raising=False)


def options(tmp_path: Path, *flags: str) -> StackOptions:
    args = parser().parse_args(["up", "--dir", str(tmp_path / "stack"), *flags])
    return stack_options(args, os.environ)


def test_without_an_endpoint_the_simulator_is_used_as_before(tmp_path: Path) -> None:
    opts = options(tmp_path)
    assert opts.runpod is None
    stack = LocalStack(opts)
    assert stack.simulated
    env = stack.service_env("runpod-bridge")
    assert env["OPENV_RUNPOD_BASE_URL"] == f"{stack.sim_url}/v2"
    assert env["OPENV_RUNPOD_API_KEY"] == RUNPOD_API_KEY
    assert env["OPENV_WEBHOOK_BASE_URL"] == stack.url_of("runpod-bridge")
    assert "OPENV_WEBHOOK_SECRET" not in env
    assert "(simulator)" in runpod_lines(stack, {})


def test_a_real_endpoint_from_the_environment_is_never_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENV_RUNPOD_ENDPOINT_ID", "abc123xyz")
    monkeypatch.setenv("OPENV_RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("OPENV_RUNPOD_BASE_URL", "https://api.runpod.ai/v2")
    monkeypatch.setenv("OPENV_WEBHOOK_BASE_URL", f"{PUBLIC}/")
    stack = LocalStack(options(tmp_path))
    assert not stack.simulated  # up starts no simulator
    bridge = stack.service_env("runpod-bridge")
    assert bridge["OPENV_RUNPOD_ENDPOINT_ID"] == "abc123xyz"
    assert bridge["OPENV_RUNPOD_API_KEY"] == KEY
    assert bridge["OPENV_RUNPOD_BASE_URL"] == "https://api.runpod.ai/v2"
    assert bridge["OPENV_WEBHOOK_BASE_URL"] == PUBLIC
    assert bridge["OPENV_ENV"] == "local"
    # The webhook is public: not the well-known development secret, one kept for the stack.
    secret_file = stack.root / "webhook-secret"
    assert bridge["OPENV_WEBHOOK_SECRET"] == secret_file.read_text().strip()
    assert len(bridge["OPENV_WEBHOOK_SECRET"]) == 64
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert (
        stack.service_env("runpod-bridge")["OPENV_WEBHOOK_SECRET"] == bridge["OPENV_WEBHOOK_SECRET"]
    )
    assert "OPENV_WEBHOOK_SECRET" not in stack.service_env("gateway")

    lines = runpod_lines(stack, {})
    assert f"RunPod must reach {PUBLIC}/webhooks/runpod/<video-id>" in lines
    assert stack.url_of("runpod-bridge") in lines
    assert "no simulator" in lines
    assert f"OPENV_S3_PUBLIC_ENDPOINT={stack.s3.endpoint}" in lines
    assert "is not public" in lines
    public = runpod_lines(stack, {"OPENV_S3_PUBLIC_ENDPOINT": "s3-abc.trycloudflare.com"})
    assert "OPENV_S3_PUBLIC_ENDPOINT=s3-abc.trycloudflare.com" in public
    assert "is not public" not in public
    assert KEY not in lines + public  # the key is never printed


def test_flags_name_the_endpoint_and_the_webhook_and_a_user_secret_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENV_RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("OPENV_WEBHOOK_BASE_URL", "http://127.0.0.1:8020")  # the flag wins
    monkeypatch.setenv("OPENV_WEBHOOK_SECRET", "the-users-own-secret-" + "x" * 32)
    opts = options(tmp_path, "--runpod-endpoint", "ep-1", "--webhook-base-url", PUBLIC)
    stack = LocalStack(opts)
    bridge = stack.service_env("runpod-bridge")
    assert (bridge["OPENV_RUNPOD_ENDPOINT_ID"], bridge["OPENV_WEBHOOK_BASE_URL"]) == (
        "ep-1",
        PUBLIC,
    )
    assert "OPENV_RUNPOD_BASE_URL" not in bridge  # the bridge's default: RunPod's API
    assert bridge["OPENV_WEBHOOK_SECRET"] == "the-users-own-secret-" + "x" * 32
    assert not (stack.root / "webhook-secret").exists()


def test_the_api_key_is_never_a_flag(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        options(tmp_path, "--runpod-endpoint", "ep-1", "--runpod-api-key", KEY)


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"OPENV_RUNPOD_API_KEY": KEY}, ["--runpod-endpoint", "ep-1"], "needs a public URL"),
        (
            {"OPENV_RUNPOD_API_KEY": KEY, "OPENV_WEBHOOK_BASE_URL": "http://127.0.0.1:8020"},
            ["--runpod-endpoint", "ep-1"],
            "is a loopback address",
        ),
        (
            {"OPENV_RUNPOD_API_KEY": KEY},
            ["--runpod-endpoint", "ep-1", "--webhook-base-url", "http://localhost:8020"],
            "is a loopback address",
        ),
        (
            {"OPENV_RUNPOD_API_KEY": KEY},
            ["--runpod-endpoint", "ep-1", "--webhook-base-url", "http://[::1]:8020"],
            "is a loopback address",
        ),
        (
            {"OPENV_RUNPOD_API_KEY": KEY},
            ["--runpod-endpoint", "ep-1", "--webhook-base-url", "http://192.168.1.5:8020"],
            "is not a public address",
        ),
        (
            {"OPENV_RUNPOD_API_KEY": KEY},
            ["--runpod-endpoint", "ep-1", "--webhook-base-url", "bridge.example.com"],
            "is not an absolute http(s) URL",
        ),
        ({}, ["--runpod-endpoint", "ep-1", "--webhook-base-url", PUBLIC], "OPENV_RUNPOD_API_KEY"),
        (
            {"OPENV_RUNPOD_API_KEY": "sim-key"},
            ["--runpod-endpoint", "ep-1", "--webhook-base-url", PUBLIC],
            "OPENV_RUNPOD_API_KEY",
        ),
        (
            {"OPENV_RUNPOD_API_KEY": KEY},
            ["--runpod-endpoint", "https://api.runpod.ai/v2/ep-1", "--webhook-base-url", PUBLIC],
            "not an endpoint id",
        ),
        ({}, ["--webhook-base-url", PUBLIC], "--runpod-endpoint"),
    ],
)
def test_a_real_endpoint_with_missing_pieces_refuses_to_start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    flags: list[str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RunPodConfigError, match=re.escape(message)):
        options(tmp_path, *flags)
