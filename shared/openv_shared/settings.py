"""Settings every service shares; each service's `config.Settings` extends these.

All variables use the `OPENV_` prefix so one environment (compose file, ConfigMap) feeds all.
Defaults are safe for the local stack; production values are documented in the README.
"""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    #: The admin port (/metrics, /readyz, internal API docs), on the same host: keep it
    #: reachable only from monitoring and the kubelet. Unset: `port` + 1000.
    admin_port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def admin_port_or_default(self) -> int:
        return self.admin_port if self.admin_port is not None else self.port + 1000


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
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/openv")
    database_pool_size: int = 10


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_", extra="ignore")

    s3_endpoint: str = "127.0.0.1:8333"
    s3_secure: bool = False
    s3_access_key: str = "openv-dev"
    s3_secret_key: SecretStr = SecretStr("openv-dev-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = "openv-videos"
    #: Host clients reach S3 at, for presigned URLs (defaults to the endpoint above).
    s3_public_endpoint: str | None = None
