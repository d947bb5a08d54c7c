"""Simulator settings, read from `RUNPOD_SIM_*` environment variables."""

from pydantic_settings import BaseSettings, SettingsConfigDict

from openv_runpod_sim.limits import Limits


class SimSettings(BaseSettings):
    """Knobs that hold for every job; per-job knobs live in `input["sim"]` (see faults.py)."""

    model_config = SettingsConfigDict(env_prefix="RUNPOD_SIM_")

    api_key: str = "sim-key"
    host: str = "127.0.0.1"
    port: int = 8089
    log_level: str = "info"
    default_duration_s: float = 2.0
    default_queue_s: float = 0.3
    # RunPod retries a non-200 webhook 2 more times, 10 s apart.
    webhook_retry_interval_s: float = 10.0
    webhook_attempts: int = 3
    webhook_timeout_s: float = 10.0
    # The worker contract (docs/architecture.md): a PUT of the result that S3 did not answer
    # (no connection, 5xx, 429) is tried again with backoff for this long before the job fails.
    upload_retry_s: float = 120.0
    # /run results are kept 30 minutes after completion, /runsync results 1 minute.
    retention_s: float = 1800.0
    runsync_retention_s: float = 60.0
    # Requested width/height are divided by this (then rounded to multiples of 16, min 64)
    # so renders stay fast; 1 renders the requested size.
    render_scale: float = 4.0
    # Concurrent workers; jobs beyond this stay IN_QUEUE until a worker frees up.
    max_workers: int = 8
    # A job that finds no warm idle worker waits this long (IN_QUEUE) for one to boot; 0 = none.
    cold_start_s: float = 0.0
    # A worker idle this long is scaled down (RunPod's default idle timeout is 5 s).
    idle_timeout_s: float = 5.0
    # Progress updates per job while IN_PROGRESS.
    progress_steps: int = 5
    # RunPod's request body limit for /run and /runsync.
    max_body_bytes: int = 10 * 1024 * 1024
    # Base URL for `/files/...` result links; empty = the base URL the /run call came in on.
    public_url: str = ""
    # Rate and concurrency limits per route, answered with 429 and no Retry-After like RunPod
    # (see limits.py): `runpod_limits` switches on RunPod's documented ones, `limits` (JSON)
    # sets or overrides single ones, e.g. {"run_per_window": 20}. Off by default.
    runpod_limits: bool = False
    limits: Limits = Limits()
    # A real worker's handler run per job instead of the simulated render (handler_host.py),
    # e.g. "env PYTHONPATH=... <worker venv>/bin/python -m openv_mochi.entrypoints.run_once";
    # empty = the simulated render.
    handler_command: str = ""

    def rate_limits(self) -> Limits:
        base = Limits.runpod() if self.runpod_limits else Limits()
        return Limits.model_validate(
            {**base.model_dump(), **self.limits.model_dump(exclude_unset=True)}
        )
