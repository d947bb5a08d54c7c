"""Jobs service settings (environment variables with the `OPENV_` prefix)."""

from pydantic import Field

from openv_jobs.domain.usage import Limits
from openv_shared.settings import BaseServiceSettings, DatabaseSettings, KafkaSettings


class Settings(BaseServiceSettings, KafkaSettings, DatabaseSettings):
    port: int = 8010
    max_active_jobs: int = 3
    quota_seconds: float = 600.0
    relay_batch_size: int = 500
    #: The projector's pause after each step that moved: no reader waits for it (reads fold
    #: what it has not written), so under load it takes fewer, larger steps.
    projector_interval_ms: int = Field(default=50, ge=0, le=10_000)
    #: Messages decided in one transaction (at most; a batch is what one poll returns).
    consumer_batch_size: int = 500

    @property
    def limits(self) -> Limits:
        return Limits(max_active_jobs=self.max_active_jobs, quota_seconds=self.quota_seconds)
