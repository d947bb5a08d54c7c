"""RunPod bridge settings (environment variables with the `OPENV_` prefix)."""

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from openv_infra.settings import (
    BaseServiceSettings,
    Credential,
    DatabaseSettings,
    KafkaSettings,
    S3Settings,
)

_SEVEN_DAYS_S = 7 * 24 * 3600
#: S3's limit for a presigned (SigV4) URL's expiry.
SIGV4_MAX_EXPIRY_S = _SEVEN_DAYS_S
#: Slack on top of ttl + execution timeout for the upload itself and clock skew.
UPLOAD_MARGIN_S = 600


class Settings(BaseServiceSettings, KafkaSettings, DatabaseSettings, S3Settings):
    port: int = 8020
    runpod_base_url: str = "https://api.runpod.ai/v2"
    #: The RunPod Serverless endpoint; the default is the simulator's.
    runpod_endpoint_id: Annotated[str, Credential()] = "openv-mochi"
    runpod_api_key: Annotated[SecretStr, Credential()] = SecretStr("sim-key")
    #: Timeout for one RunPod HTTP call (seconds).
    runpod_timeout_s: float = Field(default=10.0, gt=0)
    #: Tries per RunPod call (first one included) on connection errors, 5xx and 429 (a `/run`
    #: answered 429 is not retried by the call: the submission waits, see `runpod_rate_*`).
    runpod_max_attempts: int = Field(default=4, ge=1, le=10)
    #: First retry delay; doubles per retry, with +-50 % jitter.
    runpod_backoff_s: float = Field(default=0.5, ge=0)
    #: A Retry-After longer than this is cut to it.
    runpod_retry_after_max_s: float = Field(default=30.0, ge=0)
    #: RunPod's rate limits per endpoint, kept on our side per bridge instance: requests per
    #: `runpod_rate_window_s` and at once, per route (RunPod: /run 1000 per 10 s and 200 at
    #: once, /status 2000 per 10 s, /cancel 100 per 10 s and 20 at once). With several bridge
    #: instances, divide them between the instances. The window only differs from RunPod's
    #: 10 s in tests.
    runpod_rate_window_s: float = Field(default=10.0, gt=0)
    runpod_run_per_window: int = Field(default=1000, ge=1)
    runpod_run_concurrency: int = Field(default=200, ge=1)
    runpod_status_per_window: int = Field(default=2000, ge=1)
    runpod_cancel_per_window: int = Field(default=100, ge=1)
    runpod_cancel_concurrency: int = Field(default=20, ge=1)
    #: After a 429 the route rests for the window plus up to this much random jitter.
    runpod_throttle_jitter_s: float = Field(default=2.0, ge=0)
    #: A call whose route is full for longer than this is not sent; a submission then waits
    #: for its turn as `queued` (never failed for it). At most half of `submit_timeout_s`
    #: (a wait inside an attempt must not time the attempt out).
    runpod_limit_max_wait_s: float = Field(default=30.0, ge=0)
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
    #: Largest video a worker may return inline (base64, ComfyUI style), decoded; larger ones
    #: fail the video with `invalid_output`. RunPod answers /status with the whole output, so
    #: the bridge reads /status answers up to about 4/3 of this (`runpod_answer_max_bytes`).
    inline_output_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: How long the worker's presigned upload URL stays valid. A job may start as late as its
    #: ttl allows and then run for its execution timeout, so this must be at least
    #: `runpod_ttl_s + runpod_execution_timeout_s + UPLOAD_MARGIN_S`, and S3 (SigV4) signs for
    #: 7 days at most; both are checked at start. The URL only writes a staging object.
    upload_url_expiry_s: int = Field(default=90_000, ge=1, le=SIGV4_MAX_EXPIRY_S)
    #: The largest worker upload accepted; a bigger one fails the video (`invalid_output`).
    upload_max_bytes: int = Field(default=2 * 1024**3, ge=1024)

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

    @property
    def webhook_key(self) -> bytes:
        """`webhook_secret` as the HMAC key of webhook tokens, attempt markers and staging keys."""
        return self.webhook_secret.get_secret_value().encode()

    @property
    def runpod_answer_max_bytes(self) -> int:
        """Largest RunPod answer read: an inline video's base64 and 1 MiB for the rest."""
        return (self.inline_output_max_bytes + 2) // 3 * 4 + 1024 * 1024

    @model_validator(mode="after")
    def _runpod_base_url_is_a_url(self) -> Self:
        # A URL without a scheme made every /run fail before it was sent, yet look like a
        # lost answer (each video waiting the ambiguity bound, then failing).
        parts = urlsplit(self.runpod_base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "runpod_base_url must be an absolute http(s) URL such as https://api.runpod.ai/v2"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlives_an_attempt(self) -> Self:
        if self.submit_lease_s <= self.submit_timeout_s:
            raise ValueError("submit_lease_s must be longer than submit_timeout_s")
        return self

    @model_validator(mode="after")
    def _upload_url_outlives_the_job(self) -> Self:
        needed = self.runpod_ttl_s + self.runpod_execution_timeout_s + UPLOAD_MARGIN_S
        if needed > SIGV4_MAX_EXPIRY_S:
            raise ValueError(
                f"runpod_ttl_s + runpod_execution_timeout_s + {UPLOAD_MARGIN_S} s of margin is "
                f"{needed} s, more than the {SIGV4_MAX_EXPIRY_S} s (7 days) an S3 presigned URL "
                "can live: a job could finish after its upload URL expired. Lower the ttl or "
                "the execution timeout."
            )
        if self.upload_url_expiry_s < needed:
            raise ValueError(
                f"upload_url_expiry_s ({self.upload_url_expiry_s} s) is shorter than "
                f"runpod_ttl_s + runpod_execution_timeout_s + {UPLOAD_MARGIN_S} s of margin "
                f"({needed} s): a job that starts late would render and then fail to upload. "
                f"Set upload_url_expiry_s to at least {needed}."
            )
        return self
