"""Storage service settings (environment variables with the `OPENV_` prefix)."""

from pydantic import Field, field_validator

from openv_infra.addresses import AddressPolicy, parse_networks
from openv_infra.settings import BaseServiceSettings, KafkaSettings, S3Settings
from openv_storage.domain.retry import RetryPolicy


class Settings(BaseServiceSettings, KafkaSettings, S3Settings):
    port: int = 8030

    #: The jobs service's internal query API (video states for imports and the sweeper).
    jobs_url: str = "http://127.0.0.1:8010"
    jobs_timeout_s: float = Field(default=5.0, gt=0)

    #: Timeout of one S3 call (connect, and each read); urllib3 does not retry on its own.
    s3_timeout_s: float = Field(default=10.0, gt=0)
    #: S3 work (deleting a video's objects, an import's upload) is tried this many times, with
    #: exponential backoff from `retry_backoff_s` up to `retry_backoff_max_s` between tries;
    #: then a deletion goes to the dead-letter topic and an import fails.
    retry_attempts: int = Field(default=6, ge=1)
    retry_backoff_s: float = Field(default=0.5, ge=0)
    retry_backoff_max_s: float = Field(default=10.0, ge=0)

    #: Largest result an import accepts (bytes).
    import_max_bytes: int = Field(default=1024**3, ge=1)
    #: Let imports fetch from private, loopback and link-local addresses (local stack, tests).
    import_allow_private_hosts: bool = False
    #: Non-public networks imports may fetch from anyway, e.g. `["10.20.0.0/16"]` (JSON list).
    import_allowed_networks: list[str] = Field(default_factory=list)
    import_connect_timeout_s: float = Field(default=5.0, gt=0)
    #: Longest silence while downloading (between two chunks).
    import_read_timeout_s: float = Field(default=30.0, gt=0)
    #: Longest a whole download may take.
    import_total_timeout_s: float = Field(default=120.0, gt=0)
    import_max_redirects: int = Field(default=3, ge=0)

    #: Seconds between two sweeps by the running service (0: no periodic sweep).
    sweep_interval_s: float = Field(default=3600.0, ge=0)
    #: Objects younger than this are never swept (a video being created has no state yet).
    sweep_grace_s: float = Field(default=3600.0, ge=0)

    @field_validator("import_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_backoff_s, self.retry_backoff_max_s)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy(
            self.import_allow_private_hosts, parse_networks(self.import_allowed_networks)
        )
