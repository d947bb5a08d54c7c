"""Production refuses development credentials: defaults, placeholders, short HMAC keys."""

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from openv_bridge.config import Settings as BridgeSettings
from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier
from openv_gateway.config import Settings as GatewaySettings
from openv_gateway.main import create_app as gateway_app
from openv_infra.settings import (
    BaseServiceSettings,
    DevelopmentDefaultsRefused,
    refuse_development_defaults,
)
from openv_jobs.config import Settings as JobsSettings
from openv_localstack.tokens import make_token
from openv_storage.config import Settings as StorageSettings

ROOT = Path(__file__).resolve().parents[2]
SECRETS_EXAMPLE = ROOT / "deploy" / "k8s" / "base" / "secrets.example.yaml"
DEV_ENV = ROOT / "deploy" / "dev.env"
DEFAULT_JWT_SECRET = GatewaySettings.model_fields["jwt_secret"].default.get_secret_value()

#: Every credential each service reads, at its development default.
DEFAULTS: dict[type[BaseServiceSettings], set[str]] = {
    GatewaySettings: {
        "OPENV_JWT_SECRET",
        "OPENV_S3_ACCESS_KEY",
        "OPENV_S3_SECRET_KEY",
        "OPENV_STREAM_TOKEN_SECRET",
    },
    JobsSettings: {"OPENV_DATABASE_URL"},
    BridgeSettings: {
        "OPENV_DATABASE_URL",
        "OPENV_S3_ACCESS_KEY",
        "OPENV_S3_SECRET_KEY",
        "OPENV_RUNPOD_ENDPOINT_ID",
        "OPENV_RUNPOD_API_KEY",
        "OPENV_WEBHOOK_SECRET",
    },
    StorageSettings: {"OPENV_S3_ACCESS_KEY", "OPENV_S3_SECRET_KEY"},
}


def production_values() -> dict[str, str]:
    """Values an operator would set: random keys, real-looking ids and URLs."""
    return {
        "jwt_secret": secrets.token_urlsafe(32),
        "s3_access_key": "openv-services",
        "s3_secret_key": secrets.token_urlsafe(24),
        "database_url": f"postgresql://openv:{secrets.token_urlsafe(16)}@db:5432/openv",
        "runpod_endpoint_id": "x1y2z3abcdef",
        "runpod_api_key": "rpa_" + secrets.token_hex(20),
        "webhook_secret": secrets.token_urlsafe(32),
        "stream_token_secret": secrets.token_urlsafe(32),
    }


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings under test come from the code, not from the shell running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("OPENV_"):
            monkeypatch.delenv(name)


def build(cls: type[BaseServiceSettings], **values: Any) -> BaseServiceSettings:
    fields = cls.model_fields
    return cls(**{k: v for k, v in values.items() if k in fields})


def variables(violations: list[str]) -> set[str]:
    return {v.split(" ", 1)[0] for v in violations}


@pytest.mark.parametrize("cls", DEFAULTS, ids=lambda c: c.__module__.split(".")[0])
def test_every_development_default_is_refused(cls: type[BaseServiceSettings]) -> None:
    violations = cls().production_violations()
    assert variables(violations) == DEFAULTS[cls]
    assert all("development default" in v for v in violations), violations


@pytest.mark.parametrize("cls", DEFAULTS, ids=lambda c: c.__module__.split(".")[0])
def test_production_values_are_accepted(cls: type[BaseServiceSettings]) -> None:
    settings = build(cls, **production_values())
    assert settings.production_violations() == []
    refuse_development_defaults("svc", settings)  # does not exit


def test_the_placeholders_of_the_example_secrets_are_refused() -> None:
    """Each value of deploy/k8s/base/secrets.example.yaml, as an operator forgot it."""
    template = {
        key.lower().removeprefix("openv_"): value
        for doc in yaml.safe_load_all(SECRETS_EXAMPLE.read_text())
        for key, value in (doc.get("stringData") or {}).items()
    }
    assert template, "no values in the template"
    for name, value in template.items():
        cls = next(c for c in DEFAULTS if name in c.model_fields)
        settings = build(cls, **{**production_values(), name: value})
        assert settings.production_violations() == [
            f"OPENV_{name.upper()} is a placeholder value"
        ], name


@pytest.mark.parametrize(
    "name", ["runpod_api_key", "webhook_secret", "s3_secret_key", "jwt_secret"]
)
def test_dev_env_and_similar_placeholders_are_refused(name: str) -> None:
    for value in ["dev-only-runpod-key", "CHANGE_ME", "changeme-please-0123456789abcdefghij"]:
        cls = GatewaySettings if name == "jwt_secret" else BridgeSettings
        settings = build(cls, **{**production_values(), name: value})
        assert variables(settings.production_violations()) == {f"OPENV_{name.upper()}"}


@pytest.mark.parametrize("name", ["jwt_secret", "webhook_secret", "stream_token_secret"])
def test_hmac_keys_under_32_bytes_are_refused(name: str) -> None:
    cls = BridgeSettings if name == "webhook_secret" else GatewaySettings
    short = build(cls, **{**production_values(), name: secrets.token_hex(31)[:31]})
    assert short.production_violations() == [f"OPENV_{name.upper()} is shorter than 32 bytes"]
    exact = build(cls, **{**production_values(), name: secrets.token_hex(16)})
    assert exact.production_violations() == []


def test_an_empty_credential_is_refused_but_an_empty_jwt_secret_turns_hs256_off() -> None:
    bridge = build(BridgeSettings, **{**production_values(), "runpod_api_key": ""})
    assert bridge.production_violations() == ["OPENV_RUNPOD_API_KEY is empty"]
    jwks_only = build(
        GatewaySettings,
        **{**production_values(), "jwt_secret": "", "jwt_jwks_url": "https://x.supabase.co/j"},
    )
    assert jwks_only.production_violations() == []
    neither = build(GatewaySettings, **{**production_values(), "jwt_secret": ""})
    assert variables(neither.production_violations()) == {"OPENV_JWT_SECRET"}


def test_the_refusal_names_the_setting_and_never_the_value() -> None:
    weak = "short-but-real-looking-Kx81"
    settings = build(BridgeSettings, **{**production_values(), "webhook_secret": weak})
    with pytest.raises(DevelopmentDefaultsRefused) as refused:
        refuse_development_defaults("runpod-bridge", settings)
    message = str(refused.value.code)
    assert "OPENV_WEBHOOK_SECRET is shorter than 32 bytes" in message
    assert "runpod-bridge refuses to start" in message and "OPENV_ENV" in message
    assert weak not in message
    defaults = BridgeSettings()
    with pytest.raises(DevelopmentDefaultsRefused) as refused:
        refuse_development_defaults("runpod-bridge", defaults)
    message = str(refused.value.code)
    for name in ("webhook_secret", "runpod_api_key", "s3_secret_key", "database_url"):
        value = getattr(defaults, name).get_secret_value()
        assert value not in message, name


@pytest.mark.parametrize(
    ("env", "checked"),
    [("local", False), (" Local ", False), ("production", True), ("staging", True), ("", True)],
)
def test_only_an_explicit_local_environment_skips_the_check(
    monkeypatch: pytest.MonkeyPatch, env: str, checked: bool
) -> None:
    monkeypatch.setenv("OPENV_ENV", env)
    settings = StorageSettings()
    if checked:
        with pytest.raises(DevelopmentDefaultsRefused):
            refuse_development_defaults("storage", settings)
    else:
        refuse_development_defaults("storage", settings)


def test_the_default_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not JobsSettings().is_local
    with pytest.raises(DevelopmentDefaultsRefused):
        refuse_development_defaults("jobs", JobsSettings())


def test_the_dev_env_file_marks_itself_local() -> None:
    lines = DEV_ENV.read_text().splitlines()
    assert "OPENV_ENV=local" in lines


# ------------------------------------------------------------ HS256 beside a JWKS URL
def admin_token(secret: str = DEFAULT_JWT_SECRET) -> str:
    return make_token("mallory", secret, role="admin")


def verifier_of(settings: BaseSettings) -> JwtVerifier:
    app = gateway_app(settings)  # type: ignore[arg-type]
    verifier: JwtVerifier = app.state.jwt
    return verifier


def test_a_jwks_url_without_an_explicit_secret_turns_hs256_off() -> None:
    """A token signed with the public default secret claiming admin must not pass."""
    settings = GatewaySettings(jwt_jwks_url="http://127.0.0.1:9/jwks.json")
    assert settings.jwt_secret.get_secret_value() == ""
    verifier = verifier_of(settings)
    with pytest.raises(InvalidToken):
        asyncio.run(verifier.verify_any(admin_token()))
    # Without a JWKS URL the default still serves the local stack.
    assert asyncio.run(verifier_of(GatewaySettings()).verify_any(admin_token())).is_admin


def test_an_explicit_secret_keeps_hs256_beside_the_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = secrets.token_urlsafe(32)
    monkeypatch.setenv("OPENV_JWT_SECRET", secret)
    monkeypatch.setenv("OPENV_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json")
    verifier = verifier_of(GatewaySettings())
    assert asyncio.run(verifier.verify_any(admin_token(secret))).user_id == "mallory"
    with pytest.raises(InvalidToken):
        asyncio.run(verifier.verify_any(admin_token()))


def test_the_gateway_wires_issuer_anonymity_and_leeway_from_its_settings() -> None:
    verifier = verifier_of(
        GatewaySettings(
            jwt_issuer="https://p.supabase.co/auth/v1", jwt_allow_anonymous=True, jwt_leeway_s=5
        )
    )
    assert verifier.issuer == "https://p.supabase.co/auth/v1"
    assert verifier.allow_anonymous and verifier.leeway_s == 5
    late = jwt.encode(
        {
            "sub": "a",
            "aud": "authenticated",
            "iss": "https://p.supabase.co/auth/v1",
            "exp": int(time.time()) - 10,
        },
        DEFAULT_JWT_SECRET,
    )
    with pytest.raises(InvalidToken):
        verifier.verify(late)
