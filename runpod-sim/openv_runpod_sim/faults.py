"""Fault knobs: per job from `input["sim"]`, global ones set through `POST /admin/faults`."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt


class JobKnobs(BaseModel):
    """Per-job behaviour; unknown keys are ignored so tests can pass extra markers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    duration_s: NonNegativeFloat | None = None
    queue_s: NonNegativeFloat | None = None
    # The worker raises with this message -> FAILED, `error` is RunPod's JSON error string.
    fail: str | None = None
    # Only fail the first n executions, so /retry can succeed; None = every execution.
    fail_times: NonNegativeInt | None = None
    # The worker returns {"error": msg} -> FAILED with `error` = msg.
    output_error: str | None = None
    # The worker returns {"result": "FAILED: msg"} without `error` -> RunPod says COMPLETED.
    failed_result: str | None = None
    drop_webhook: bool = False
    duplicate_webhook: NonNegativeInt = 0
    webhook_delay_s: NonNegativeFloat = 0.0
    progress_after_complete: bool = False
    non_json_webhook: bool = False
    # Undocumented at RunPod whether these fire; off unless a test asks.
    webhook_on_cancel: bool = False
    webhook_on_timeout: bool = False
    hang: bool = False
    result_url: bool = False
    upload_fail: bool = False
    progress_format: Literal["int", "dict_progress", "dict_percent"] = "int"

    @classmethod
    def from_input(cls, job_input: dict[str, Any]) -> "JobKnobs":
        """Parse `input["sim"]`; raises ValueError (a 400 for the caller) if it is malformed."""
        raw = job_input.get("sim")
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("input.sim must be an object")
        return cls.model_validate(raw)


class GlobalFaultsUpdate(BaseModel):
    """Body of `POST /admin/faults`; only the keys given are changed."""

    model_config = ConfigDict(extra="forbid")

    run_429: NonNegativeInt | None = None
    run_500: NonNegativeInt | None = None
    status_500: NonNegativeInt | None = None
    hang_run_s: NonNegativeFloat | None = None


class GlobalFaults(BaseModel):
    """Faults that apply to the next API calls regardless of job."""

    # Answer the next n /run calls with 429 (Retry-After: 1) / 500, creating no job.
    run_429: int = Field(default=0, ge=0)
    run_500: int = Field(default=0, ge=0)
    # Answer the next n /status calls with 500.
    status_500: int = Field(default=0, ge=0)
    # Delay every /run answer by this many seconds (the job is created before the delay).
    hang_run_s: float = Field(default=0.0, ge=0)

    def apply(self, update: GlobalFaultsUpdate) -> None:
        for name, value in update.model_dump(exclude_none=True).items():
            setattr(self, name, value)

    def take_run_error(self) -> int | None:
        """The HTTP status the next /run must fail with, consuming one unit of the burst."""
        if self.run_429 > 0:
            self.run_429 -= 1
            return 429
        if self.run_500 > 0:
            self.run_500 -= 1
            return 500
        return None

    def take_status_error(self) -> bool:
        if self.status_500 > 0:
            self.status_500 -= 1
            return True
        return False
