"""Fault knobs: per job from `input["sim"]`, global ones set through `POST /admin/faults`."""

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
)

#: How a lost `/run` answer looks to the client (the job exists either way): a gateway's 502 or
#: 504 after RunPod created the job, or no answer before the client gives up ("timeout": the
#: answer is held back `lost_run_answer_hang_s`, longer than the client waits).
LostAnswer = Literal["502", "504", "timeout"]


class JobKnobs(BaseModel):
    """Per-job behaviour; unknown keys are ignored so tests can pass extra markers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    duration_s: NonNegativeFloat | None = None
    queue_s: NonNegativeFloat | None = None
    # This job lands on a fresh worker that boots this long (IN_QUEUE, part of delayTime).
    cold_start_s: NonNegativeFloat | None = None
    # Keep this job's result this long after it ends instead of the endpoint's retention.
    retention_s: NonNegativeFloat | None = None
    # Cancelled on RunPod's side this long after /run (from the console, by another client):
    # no webhook unless webhook_on_cancel, so only polling shows it.
    cancel_after_s: NonNegativeFloat | None = None
    # The worker raises with this message -> FAILED, `error` is RunPod's JSON error string.
    fail: str | None = None
    # Only fail the first n executions, so /retry can succeed; None = every execution.
    fail_times: NonNegativeInt | None = None
    # The worker returns {"error": msg} -> FAILED with `error` = msg.
    output_error: str | None = None
    # The worker returns {"result": "FAILED: msg"} without `error` -> RunPod says COMPLETED.
    failed_result: str | None = None
    # The worker returns {"result": this, "status": "DONE"} verbatim and uploads nothing: a
    # broken or hostile worker's result (an endless URL, control characters, another scheme).
    result: str | None = None
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
    #: What the worker hands back (../shared/runpod.md, "Worker output"): `upload` is our
    #: convention (PUT to `output_put_url`, return the key; a result URL without one); the
    #: OpenV worker's `openv_success` / `openv_done` (`{"result": url, "status": ...}`, the file
    #: served on /files) and `openv_error` (`{"status": "ERROR", "error": output_error or a
    #: default}`); ComfyUI's `comfy_s3_url` / `comfy_base64` (`{"videos": [{"type", "data"}]}`);
    #: and a worker that hands nothing back (COMPLETED with output None, {} or []).
    output_style: Literal[
        "upload",
        "openv_success",
        "openv_done",
        "openv_error",
        "comfy_s3_url",
        "comfy_base64",
        "none",
        "empty_dict",
        "empty_list",
    ] = "upload"
    #: Pad the rendered MP4 (a trailing `free` box, still playable) to at least this many
    #: bytes: e.g. a base64 output over RunPod's 1 MB webhook limit.
    output_min_bytes: NonNegativeInt = 0
    #: The execution timeout ends the job FAILED (RunPod's docs: "the job fails and the worker
    #: stops"), with a webhook, instead of TIMED_OUT.
    timeout_as_failed: bool = False
    #: Report no progress while running (the OpenV worker reports none).
    no_progress: bool = False
    upload_fail: bool = False
    progress_format: Literal["int", "dict_progress", "dict_percent"] = "int"
    # Override the job's policy (as if the client had sent these): reach TIMED_OUT or the
    # ttl's 404 in seconds instead of minutes.
    execution_timeout_s: PositiveFloat | None = None
    ttl_s: PositiveFloat | None = None

    @classmethod
    def from_input(
        cls, job_input: dict[str, Any], base: dict[str, Any] | None = None
    ) -> "JobKnobs":
        """Parse `input["sim"]` over `base` (knobs of matching scenarios); raises ValueError
        (a 400 for the caller) if it is malformed."""
        raw = job_input.get("sim")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError("input.sim must be an object")
        return cls.model_validate({**(base or {}), **raw})


class ScenarioSpec(BaseModel):
    """Body of `POST /admin/scenarios`: knobs for every later job whose prompt matches.

    The bridge builds `input` itself, so end-to-end tests cannot put knobs in `input.sim`;
    they put a marker in the prompt instead and register a scenario for it.
    """

    model_config = ConfigDict(extra="forbid")

    prompt_contains: str = Field(min_length=1)
    #: JobKnobs for matching jobs; a job's own `input.sim` overrides them key by key.
    sim: dict[str, Any] = Field(default_factory=dict)
    #: Answer this many matching /run calls with 429 (Retry-After: 1) / 500, creating no job.
    run_429: NonNegativeInt = 0
    run_500: NonNegativeInt = 0
    #: Refuse every matching /run with HTTP 400 and this error message (a permanent refusal).
    reject_run: str | None = None
    #: Lose the answer of this many matching /run calls after creating their job (it runs).
    lose_run_answers: NonNegativeInt = 0
    lost_run_answer_as: LostAnswer = "504"


class Scenario(BaseModel):
    """A registered scenario and what it has done so far."""

    id: int
    spec: ScenarioSpec
    run_calls: int = 0
    jobs: list[str] = Field(default_factory=list)
    run_429_left: int = 0
    run_500_left: int = 0
    lost_answers_left: int = 0

    def matches(self, job_input: dict[str, Any]) -> bool:
        prompt = job_input.get("positive_prompt")
        return isinstance(prompt, str) and self.spec.prompt_contains in prompt


class Scenarios:
    """Registered scenarios, matched in the order they were added."""

    def __init__(self) -> None:
        self._items: list[Scenario] = []

    def add(self, spec: ScenarioSpec) -> Scenario:
        JobKnobs.model_validate(spec.sim)  # refuse bad knobs now, not at the job's /run
        scenario = Scenario(
            id=len(self._items) + 1,
            spec=spec,
            run_429_left=spec.run_429,
            run_500_left=spec.run_500,
            lost_answers_left=spec.lose_run_answers,
        )
        self._items.append(scenario)
        return scenario

    def matching(self, job_input: dict[str, Any]) -> list[Scenario]:
        return [s for s in self._items if s.matches(job_input)]

    def all(self) -> list[Scenario]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()


def run_fault(scenarios: list[Scenario]) -> tuple[int, str] | None:
    """The (HTTP status, message) a matching /run must fail with, consuming a burst unit."""
    for scenario in scenarios:
        if scenario.spec.reject_run is not None:
            return 400, scenario.spec.reject_run
        if scenario.run_429_left > 0:
            scenario.run_429_left -= 1
            return 429, "Too many requests (simulated)"
        if scenario.run_500_left > 0:
            scenario.run_500_left -= 1
            return 500, "Internal server error (simulated)"
    return None


def lost_answer(scenarios: list[Scenario], faults: "GlobalFaults") -> LostAnswer | None:
    """How the answer of a /run that created its job is lost, if it is (consuming one)."""
    for scenario in scenarios:
        if scenario.lost_answers_left > 0:
            scenario.lost_answers_left -= 1
            return scenario.spec.lost_run_answer_as
    if faults.lose_run_answers > 0:
        faults.lose_run_answers -= 1
        return faults.lost_run_answer_as
    return None


def scenario_knobs(scenarios: list[Scenario]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for scenario in scenarios:
        merged.update(scenario.spec.sim)
    return merged


class GlobalFaultsUpdate(BaseModel):
    """Body of `POST /admin/faults`; only the keys given are changed."""

    model_config = ConfigDict(extra="forbid")

    run_429: NonNegativeInt | None = None
    run_500: NonNegativeInt | None = None
    status_500: NonNegativeInt | None = None
    cancel_500: NonNegativeInt | None = None
    hang_run_s: NonNegativeFloat | None = None
    lose_run_answers: NonNegativeInt | None = None
    lost_run_answer_as: LostAnswer | None = None
    lost_run_answer_hang_s: NonNegativeFloat | None = None


class GlobalFaults(BaseModel):
    """Faults that apply to the next API calls regardless of job."""

    # Answer the next n /run calls with 429 (Retry-After: 1) / 500, creating no job.
    run_429: int = Field(default=0, ge=0)
    run_500: int = Field(default=0, ge=0)
    # Answer the next n /status calls with 500.
    status_500: int = Field(default=0, ge=0)
    # Answer the next n /cancel calls with 500 (the job is not cancelled).
    cancel_500: int = Field(default=0, ge=0)
    # Delay every /run answer by this many seconds (the job is created before the delay).
    hang_run_s: float = Field(default=0.0, ge=0)
    # Lose the answer of the next n /run calls after creating their job (the job runs):
    # a 502/504 instead of the job's id, or no answer for `lost_run_answer_hang_s`.
    lose_run_answers: int = Field(default=0, ge=0)
    lost_run_answer_as: LostAnswer = "504"
    lost_run_answer_hang_s: float = Field(default=30.0, ge=0)

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

    def take_cancel_error(self) -> bool:
        if self.cancel_500 > 0:
            self.cancel_500 -= 1
            return True
        return False
