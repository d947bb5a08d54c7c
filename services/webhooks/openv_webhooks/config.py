"""Webhooks service settings (environment variables with the `OPENV_` prefix)."""

from pydantic import Field

from openv_infra.settings import (
    BaseServiceSettings,
    ClientWebhookAddressSettings,
    DatabaseSettings,
    KafkaSettings,
    S3Settings,
)
from openv_webhooks.domain.backoff import RetrySchedule

#: A claimed delivery's lease outlives its attempt's timeout by this much; after it (the
#: instance died) another instance tries the delivery again.
LEASE_MARGIN_S = 30.0


class Settings(
    BaseServiceSettings,
    KafkaSettings,
    DatabaseSettings,
    S3Settings,
    ClientWebhookAddressSettings,
):
    port: int = 8040

    #: The jobs service's internal query API (a video's view after a gap in the events).
    jobs_url: str = "http://127.0.0.1:8010"
    jobs_timeout_s: float = Field(default=5.0, gt=0)
    #: How long a presigned playback URL in a webhook body stays valid.
    playback_url_expiry_s: int = Field(default=3600, ge=1)

    #: One attempt (connect, send, answer) is abandoned after this long.
    client_webhook_timeout_s: float = Field(default=10.0, gt=0)
    #: Wait after the first failed attempt; doubles per attempt (with jitter) up to the max.
    client_webhook_retry_base_s: float = Field(default=5.0, ge=0)
    client_webhook_retry_max_s: float = Field(default=3600.0, ge=0)
    #: A delivery without a 2xx answer this long after it was recorded fails.
    client_webhook_give_up_s: float = Field(default=86400.0, gt=0)
    #: Attempts in flight at once per instance...
    client_webhook_concurrency: int = Field(default=64, ge=1)
    #: ...and per receiver (scheme://host:port): a slow receiver only fills its own slots.
    client_webhook_per_receiver: int = Field(default=4, ge=1)
    #: How often the dispatcher looks for due deliveries when nothing new woke it.
    client_webhook_poll_s: float = Field(default=1.0, gt=0)
    #: After a rotation, the old signing secret keeps signing alongside for this long.
    client_webhook_secret_overlap_s: float = Field(default=86400.0, ge=0)

    @property
    def retry_schedule(self) -> RetrySchedule:
        return RetrySchedule(
            self.client_webhook_retry_base_s,
            self.client_webhook_retry_max_s,
        )

    @property
    def lease_s(self) -> float:
        return self.client_webhook_timeout_s + LEASE_MARGIN_S
