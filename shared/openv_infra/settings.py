"""Settings every service shares; each service's `config.Settings` extends these.

All variables use the `OPENV_` prefix so one environment (compose file, ConfigMap) feeds all.
Defaults are safe for the local stack; production values are documented in docs/operations.md.
Credentials are marked `Credential`: outside `OPENV_ENV=local` a service refuses to start while
one of them holds its development default or a placeholder (`production_violations`).
"""

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openv_infra.addresses import AddressPolicy, parse_networks

#: Parts of the placeholder values of the example files (`REPLACE_ME`), the development
#: defaults (`...-change-me`), deploy/dev.env (`dev-only-...`) and the local stack
#: (`openv-local...`); compared case-insensitively, `_` as `-`.
PLACEHOLDER_MARKERS = (
    "replace-me",
    "change-me",
    "changeme",
    "dev-only",
    "placeholder",
    "openv-local",
)


@dataclass(frozen=True)
class Credential:
    """Marks a setting production must set itself: not its default, not a placeholder."""

    #: HMAC keys: at least this many bytes (UTF-8).
    min_bytes: int = 0
    #: An empty value is allowed (it turns the feature off, e.g. HS256 tokens).
    may_be_empty: bool = False


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    #: `local` for the local stack, tests and development deployments. Any other value
    #: (the default included) is production: development credentials are refused at start.
    env: str = "production"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    #: The admin port (/metrics, /readyz, internal API docs), on the same host: keep it
    #: reachable only from monitoring and the kubelet. Unset: `port` + 1000.
    admin_port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def admin_port_or_default(self) -> int:
        return self.admin_port if self.admin_port is not None else self.port + 1000

    @property
    def is_local(self) -> bool:
        return self.env.strip().lower() == "local"

    def production_violations(self) -> list[str]:
        """What keeps this configuration from production (empty when it is fine); a service
        adds its own rules by extending this."""
        return credential_violations(self)


def _plain(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)


def _is_placeholder(value: str) -> bool:
    folded = value.lower().replace("_", "-")
    return any(marker in folded for marker in PLACEHOLDER_MARKERS)


def credential_violations(settings: BaseSettings) -> list[str]:
    """One line per `Credential` setting holding a development value, naming the variable and
    never the value."""
    prefix = settings.model_config.get("env_prefix", "")
    violations: list[str] = []
    for name, field in type(settings).model_fields.items():
        marker = next((m for m in field.metadata if isinstance(m, Credential)), None)
        if marker is None:
            continue
        variable = f"{prefix}{name}".upper()
        value = _plain(getattr(settings, name))
        if not value:
            if not marker.may_be_empty:
                violations.append(f"{variable} is empty")
        elif value == _plain(field.default):
            violations.append(f"{variable} is the development default")
        elif _is_placeholder(value):
            violations.append(f"{variable} is a placeholder value")
        elif len(value.encode()) < marker.min_bytes:
            violations.append(f"{variable} is shorter than {marker.min_bytes} bytes")
    return violations


class DevelopmentDefaultsRefused(SystemExit):
    """A service outside `OPENV_ENV=local` configured with development credentials."""


def refuse_development_defaults(service: str, settings: BaseServiceSettings) -> None:
    """Exit (status 1, the reasons on stderr) unless local or free of development values."""
    if settings.is_local:
        return
    violations = settings.production_violations()
    if violations:
        lines = "\n".join(f"  - {violation}" for violation in violations)
        raise DevelopmentDefaultsRefused(
            f"{service} refuses to start: OPENV_ENV is not `local`, so this is production, "
            f"and these settings hold development values:\n{lines}\n"
            "Set each to its production value (docs/operations.md, 'Required in production'), "
            "or OPENV_ENV=local for local development only."
        )


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    #: On for Apache Kafka; Tansu (local stack) does not support the idempotent producer.
    kafka_idempotent_producer: bool = False
    #: How long a fetch waits for data, for consumers no create waits on (the bridge's
    #: submissions, storage's imports and deletions). Tansu holds a waiting fetch until this
    #: much time has passed even when data arrives (measured: ~30 ms per hop at 100 ms, 3 ms
    #: at 10 ms); Apache Kafka answers as soon as data arrives. Each idle consumer at 10 ms
    #: costs it and Tansu ~7 % of a core here, at 100 ms ~2 %.
    kafka_fetch_max_wait_ms: int = 100
    #: The same for consumers every create waits on: the jobs service (every decision) and
    #: the gateway's live feed (the answers).
    kafka_request_path_fetch_max_wait_ms: int = 10
    #: How much data a fetch of the consumers no create waits on asks the broker to gather
    #: (or until their fetch wait is up): fewer, larger batches, each a claim, a produce and
    #: an offset commit. On Tansu it cut the bridge's fetches per create from 0.20 to 0.08,
    #: storage's from 0.29 to 0.15, and p99 at 200 creates/s from 68-72 to 50-58 ms
    #: (docs/performance.md). The consumers every create waits on take what there is (1 byte).
    kafka_fetch_min_bytes: int = Field(default=16384, ge=1)
    #: How long a batch consumer waits for records it has not fetched yet. FastStream sleeps
    #: this long again after an empty wait, so at its default (200 ms) a message arriving at
    #: an idle batch consumer could wait 400 ms; polling the fetched records is local work.
    kafka_batch_wait_ms: int = 10
    kafka_session_timeout_ms: int = 6000
    kafka_heartbeat_interval_ms: int = 1000


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    #: asyncpg DSN, e.g. postgresql://user:pass@host:5432/openv_jobs
    database_url: Annotated[SecretStr, Credential()] = SecretStr(
        "postgresql://postgres@127.0.0.1:5432/openv"
    )
    database_pool_size: int = 10


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    s3_endpoint: str = "127.0.0.1:8333"
    s3_secure: bool = False
    s3_access_key: Annotated[str, Credential()] = "openv-dev"
    s3_secret_key: Annotated[SecretStr, Credential()] = SecretStr("openv-dev-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = "openv-videos"
    #: Host clients reach S3 at, for presigned URLs (defaults to the endpoint above).
    s3_public_endpoint: str | None = None


class ClientWebhookAddressSettings(BaseSettings):
    """Where client apps' webhooks may point: checked by the gateway when a create names one
    and by the webhooks service at every connection, so both read the same settings."""

    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    #: Allow `http://` webhooks (the local stack, tests); https only otherwise.
    client_webhook_allow_http: bool = False
    #: Allow webhook hosts that are, or resolve to, private, loopback or link-local addresses
    #: (the local stack, tests).
    client_webhook_allow_private_hosts: bool = False
    #: Non-public networks webhook hosts may be in anyway, e.g. `["10.20.0.0/16"]` (JSON list).
    client_webhook_allowed_networks: list[str] = Field(default_factory=list)

    @field_validator("client_webhook_allowed_networks")
    @classmethod
    def _valid_webhook_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @property
    def webhook_address_policy(self) -> AddressPolicy:
        return AddressPolicy(
            self.client_webhook_allow_private_hosts,
            parse_networks(self.client_webhook_allowed_networks),
        )
