"""RunPod bridge settings (environment variables with the `OPENV_` prefix)."""

from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator

from openv_shared.settings import (
    BaseServiceSettings,
    Credential,
    DatabaseSettings,
    KafkaSettings,
    S3Settings,
)

_SEVEN_DAYS_S = 7 * 24 * 3600


class Settings(BaseServiceSettings, KafkaSettings, DatabaseSettings, S3Settings):
    port: int = 8020
    runpod_base_url: str = "https://api.runpod.ai/v2"
    #: The RunPod Serverless endpoint; the default is the simulator's.
    runpod_endpoint_id: Annotated[str, Credential()] = "openv-mochi"
    runpod_api_key: Annotated[SecretStr, Credential()] = SecretStr("sim-key")
    #: Timeout for one RunPod HTTP call (seconds).
    runpod_timeout_s: float = Field(default=10.0, gt=0)
    #: Tries per RunPod call (first one included) on connection errors, 5xx and 429.
    runpod_max_attempts: int = Field(default=4, ge=1, le=10)
    #: First retry delay; doubles per retry, with +-50 % jitter.
    runpod_backoff_s: float = Field(default=0.5, ge=0)
    #: A Retry-After longer than this is cut to it.
    runpod_retry_after_max_s: float = Field(default=30.0, ge=0)
    #: RunPod policy: how long a job may run, and how long it may live at all (ms on the wire).
    #: RunPod's bounds: executionTimeout 5 s..7 days, ttl 10 s..7 days.
    runpod_execution_timeout_s: int = Field(default=600, ge=5, le=_SEVEN_DAYS_S)
    runpod_ttl_s: int = Field(default=86400, ge=10, le=_SEVEN_DAYS_S)
    #: Base URL RunPod can reach this bridge at; the webhook path and token are appended.
    webhook_base_url: str = "http://127.0.0.1:8020"
    #: Key for the per-video webhook tokens (HMAC-SHA256). Set a long random value in production.
    webhook_secret: Annotated[SecretStr, Credential(min_bytes=32)] = SecretStr(
        "local-dev-webhook-secret-change-me"
    )
    #: Webhook bodies above this are refused (RunPod's are a few KB: status, output, input).
    webhook_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    #: How long the worker's presigned upload URL stays valid (must exceed the execution timeout).
    upload_url_expiry_s: int = 7200

    #: One submission attempt (/run with its retries) is abandoned after this long.
    submit_timeout_s: float = Field(default=60.0, gt=0)
    #: An attempt holds its claim this long; after it (a crash, a hang) another attempt may
    #: start. Longer than `submit_timeout_s`, so a live attempt is never doubled.
    submit_lease_s: float = Field(default=120.0, gt=0)
    #: Videos of one consumer batch submitted (or cancelled) at once; RunPod allows 200
    #: concurrent `/run` requests per endpoint.
    submit_concurrency: int = Field(default=16, ge=1, le=200)
    #: Submission attempts before the video fails with `runpod_failed`.
    submit_max_attempts: int = Field(default=5, ge=1)
    #: Wait before retrying a failed attempt; doubles per attempt, capped at `submit_lease_s`.
    submit_retry_base_s: float = Field(default=5.0, ge=0)
    #: After a `/run` whose answer was lost (its job may exist), wait this long for that job
    #: to report before sending the video again. A job only reports when it ends, so this is
    #: a bet on the job's queue + run time: longer means fewer GPU jobs paid twice, shorter a
    #: faster retry when no job was created (docs/architecture.md, "One GPU job per video").
    ambiguous_run_wait_s: float = Field(default=900.0, ge=0)

    #: How often the reconciler looks for quiet jobs, stalled submissions and cancels.
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    #: A job in flight with no news (webhook or poll) for this long is polled on /status.
    reconcile_quiet_s: float = Field(default=30.0, gt=0)
    #: Records handled per sweep and kind (the rest wait for the next sweep).
    reconcile_batch_size: int = Field(default=200, ge=1)
    #: RunPod calls the reconciler makes at once...
    reconcile_concurrency: int = Field(default=8, ge=1)
    #: ...and per second (RunPod allows /status 2000 per 10 s per endpoint).
    reconcile_requests_per_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_an_attempt(self) -> Self:
        if self.submit_lease_s <= self.submit_timeout_s:
            raise ValueError("submit_lease_s must be longer than submit_timeout_s")
        return self
