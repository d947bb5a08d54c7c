"""Jobs service settings (environment variables with the `OPENV_` prefix)."""

from pydantic import Field

from openv_infra.settings import BaseServiceSettings, DatabaseSettings, KafkaSettings
from openv_jobs.domain.usage import Limits


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
    #: A video still `queued` this long after it was accepted is timed out (slot and quota
    #: given back): its request never became a RunPod job. Longer than the bridge's
    #: submission retries last, so a RunPod that refuses jobs for a while delays videos
    #: without ending them.
    queued_timeout_s: float = Field(default=3600.0, gt=0)
    #: A video `submitted` or `running` with no news of its RunPod job this long is timed out:
    #: its outcome was lost. Keep it above the bridge's `runpod_ttl_s` (24 h) plus
    #: `runpod_execution_timeout_s` (600 s): RunPod keeps a job no longer.
    silent_timeout_s: float = Field(default=90000.0, gt=0)
    #: How often each instance looks for such videos (queued or silent).
    queued_timeout_check_s: float = Field(default=60.0, gt=0)

    @property
    def limits(self) -> Limits:
        return Limits(max_active_jobs=self.max_active_jobs, quota_seconds=self.quota_seconds)
