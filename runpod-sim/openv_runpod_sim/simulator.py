"""One simulator's state (settings, jobs, the runner, faults, scenarios, limits, the API key
and known endpoints) and the validation of a /run or /runsync body into a job."""

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import (
    GlobalFaults,
    JobKnobs,
    Scenario,
    Scenarios,
    run_fault,
    scenario_knobs,
)
from openv_runpod_sim.jobs import Job, JobStatus, JobTable, new_job_id
from openv_runpod_sim.limits import RateLimiter
from openv_runpod_sim.worker import Runner

_DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
_DEFAULT_TTL_MS = 86_400_000


class ApiError(Exception):
    """Becomes a JSON `{"error": message}` answer with the given status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class Submission:
    job: Job
    scenarios: list[Scenario]

    def accepted(self) -> None:
        for scenario in self.scenarios:
            scenario.jobs.append(self.job.id)


class Simulator:
    """Everything one app instance holds: settings, jobs, the runner and the global faults."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.table = JobTable()
        self.runner = Runner(settings, self.table)
        self.faults = GlobalFaults()
        self.scenarios = Scenarios()
        self.limiter = RateLimiter(settings.rate_limits())
        #: The key the API accepts; `POST /admin/api-key` changes it (a key rotation).
        self.api_key = settings.api_key
        #: Endpoint ids that exist (None: any does); RunPod answers 404 for others, on every
        #: route (`POST /admin/endpoints`).
        self.endpoints: set[str] | None = None

    def job_or_404(self, endpoint_id: str, job_id: str) -> Job:
        job = self.table.get(job_id)
        # A job is only visible under the endpoint it was submitted to, as on RunPod.
        if job is None or job.endpoint_id != endpoint_id:
            raise ApiError(404, f"job {job_id} not found")
        return job

    async def parse_submission(
        self, request: Request, endpoint_id: str, runsync: bool
    ) -> Submission:
        """Validate a /run or /runsync body and build (not start) the job.

        Raises ApiError for a bad body, or for a fault of a matching scenario."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes")
        raw = await request.body()
        if len(raw) > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        job_input = body.get("input")
        if not isinstance(job_input, dict):
            raise ApiError(400, "'input' is required and must be an object")
        webhook = body.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            raise ApiError(400, "'webhook' must be a string URL")
        policy = body.get("policy") or {}
        if not isinstance(policy, dict):
            raise ApiError(400, "'policy' must be an object")
        matching = self.scenarios.matching(job_input)
        for scenario in matching:
            scenario.run_calls += 1
        fault = run_fault(matching)
        if fault is not None:
            status, message = fault
            headers = {"Retry-After": "1"} if status == 429 else None
            raise ApiError(status, message, headers)
        try:
            knobs = JobKnobs.from_input(job_input, scenario_knobs(matching))
        except (ValueError, ValidationError) as exc:
            raise ApiError(400, f"invalid input.sim: {exc}") from exc
        timeout_ms = _policy_ms(policy, "executionTimeout", _DEFAULT_EXECUTION_TIMEOUT_MS)
        ttl_ms = _policy_ms(policy, "ttl", _DEFAULT_TTL_MS)
        retention = self.settings.retention_s if knobs.retention_s is None else knobs.retention_s
        if runsync:
            retention = min(retention, self.settings.runsync_retention_s)
        job = Job(
            id=new_job_id(),
            endpoint_id=endpoint_id,
            input=job_input,
            knobs=knobs,
            webhook=webhook,
            execution_timeout_s=knobs.execution_timeout_s or timeout_ms / 1000,
            ttl_s=knobs.ttl_s or ttl_ms / 1000,
            retention_s=retention,
            base_url=str(request.base_url),
            policy={"executionTimeout": timeout_ms, "ttl": ttl_ms},
        )
        return Submission(job, matching)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        count = self.table.count
        running = count(JobStatus.IN_PROGRESS)
        return {
            "jobs": {
                "completed": count(JobStatus.COMPLETED, endpoint_id),
                "failed": count(JobStatus.FAILED, endpoint_id),
                "inProgress": count(JobStatus.IN_PROGRESS, endpoint_id),
                "inQueue": count(JobStatus.IN_QUEUE, endpoint_id),
                "retried": self.table.retried,
            },
            "workers": {"idle": self.runner.idle, "running": running},
        }


def _policy_ms(policy: dict[str, Any], name: str, default: int) -> int:
    value = policy.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ApiError(400, f"policy.{name} must be a positive integer of milliseconds")
    return value


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
