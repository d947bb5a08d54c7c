"""FastAPI app speaking RunPod Serverless' HTTP API (`/v2/{endpoint_id}/...`) plus admin routes."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import (
    GlobalFaults,
    GlobalFaultsUpdate,
    JobKnobs,
    Scenario,
    Scenarios,
    ScenarioSpec,
    lost_answer,
    run_fault,
    scenario_knobs,
)
from openv_runpod_sim.jobs import RETRYABLE, Job, JobStatus, JobTable, new_job_id
from openv_runpod_sim.limits import LimitsUpdate, RateLimiter, RateLimitMiddleware
from openv_runpod_sim.pool import PoolUpdate
from openv_runpod_sim.worker import Runner

log = logging.getLogger(__name__)

_DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
_DEFAULT_TTL_MS = 86_400_000
_DEFAULT_RUNSYNC_WAIT_MS = 90_000
_SWEEP_INTERVAL_S = 0.1


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


def _pool_view(sim: Simulator) -> dict[str, Any]:
    """The worker pool's settings (`POST /admin/workers` changes them) and its state."""
    pool = sim.runner.pool
    return {**pool.config.model_dump(), "busy": pool.busy, "idle": pool.idle}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _ApiRequestLog:
    """Plain ASGI middleware (it must not change how requests run or get cancelled): notes
    every RunPod API call, with its path as the client sent it, in `JobTable.api_requests`."""

    def __init__(self, app: ASGIApp, table: JobTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v2/"):
            raw = scope.get("raw_path") or scope["path"].encode()
            self.table.api_requests.append(f"{scope['method']} {raw.decode('latin-1')}")
        await self.app(scope, receive, send)


def create_app(settings: SimSettings | None = None) -> FastAPI:
    settings = settings or SimSettings()
    sim = Simulator(settings)

    async def sweep_forever() -> None:
        # ttl must stop running jobs even when nobody polls them.
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL_S)
            sim.table.sweep()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.runner.start()
        sweeper = asyncio.create_task(sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await sim.runner.close()

    app = FastAPI(title="OpenV RunPod simulator", lifespan=lifespan)
    app.state.sim = sim

    # Inside the request log: a call refused for the rate limit is still a call made.
    app.add_middleware(RateLimitMiddleware, limiter=sim.limiter)
    app.add_middleware(_ApiRequestLog, table=sim.table)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    async def require_key(authorization: Annotated[str | None, Header()] = None) -> None:
        # RunPod accepts "Bearer <key>" and the bare key.
        token = (authorization or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token or token != sim.api_key:
            raise ApiError(401, "Unauthorized: missing or invalid API key")

    async def require_endpoint(endpoint_id: str) -> None:
        if sim.endpoints is not None and endpoint_id not in sim.endpoints:
            raise ApiError(404, f"endpoint {endpoint_id} not found")

    api = APIRouter(
        prefix="/v2/{endpoint_id}",
        dependencies=[Depends(require_key), Depends(require_endpoint)],
    )

    @api.post("/run")
    async def run(endpoint_id: str, request: Request) -> JSONResponse:
        sim.table.run_calls += 1
        fault = sim.faults.take_run_error()
        if fault == 429:
            return _error(429, "Too many requests (simulated)", {"Retry-After": "1"})
        if fault == 500:
            return _error(500, "Internal server error (simulated)")
        submission = await sim.parse_submission(request, endpoint_id, runsync=False)
        job = submission.job
        sim.table.add(job)
        sim.table.runs_accepted += 1
        submission.accepted()
        sim.runner.submit(job)
        if sim.faults.hang_run_s:
            # The job already exists: a client that times out here has still created it.
            await asyncio.sleep(sim.faults.hang_run_s)
        lost = lost_answer(submission.scenarios, sim.faults)
        if lost is not None:
            # The job exists and runs; the client never learns its id.
            job.answer_lost = True
            sim.table.answers_lost += 1
            if lost == "timeout":
                await asyncio.sleep(sim.faults.lost_run_answer_hang_s)
            else:
                return _error(int(lost), "Gateway error (simulated; the job was created)")
        return JSONResponse({"id": job.id, "status": str(JobStatus.IN_QUEUE)})

    @api.post("/runsync")
    async def runsync(endpoint_id: str, request: Request, wait: int | None = None) -> JSONResponse:
        submission = await sim.parse_submission(request, endpoint_id, runsync=True)
        job = submission.job
        sim.table.add(job)
        submission.accepted()
        sim.runner.submit(job)
        wait_ms = min(max(wait or _DEFAULT_RUNSYNC_WAIT_MS, 1000), 300_000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), wait_ms / 1000)
        return JSONResponse(job.status_body())

    @api.get("/status/{job_id}")
    async def status(endpoint_id: str, job_id: str) -> JSONResponse:
        if sim.faults.take_status_error():
            return _error(500, "Internal server error (simulated)")
        return JSONResponse(sim.job_or_404(endpoint_id, job_id).status_body())

    @api.post("/cancel/{job_id}")
    async def cancel(endpoint_id: str, job_id: str) -> JSONResponse:
        # Recorded before the lookup: tests check who asked to cancel what, known or not.
        sim.table.cancel_requests.append(job_id)
        if sim.faults.take_cancel_error():
            return _error(500, "Internal server error (simulated)")
        job = sim.job_or_404(endpoint_id, job_id)
        job.cancel_requests += 1
        sim.runner.cancel(job)  # terminal jobs keep their state
        return JSONResponse({"id": job.id, "status": str(job.status)})

    @api.post("/retry/{job_id}")
    async def retry(endpoint_id: str, job_id: str) -> JSONResponse:
        job = sim.job_or_404(endpoint_id, job_id)
        if job.status not in RETRYABLE:
            raise ApiError(400, f"job {job_id} is {job.status}; only FAILED or TIMED_OUT can retry")
        sim.runner.retry(job)
        return JSONResponse({"id": job.id, "status": str(job.status)})

    @api.post("/purge-queue")
    async def purge_queue(endpoint_id: str) -> JSONResponse:
        queued = [
            job
            for job in sim.table.all()
            if job.endpoint_id == endpoint_id and job.status is JobStatus.IN_QUEUE
        ]
        for job in queued:
            sim.table.remove(job)
        return JSONResponse({"removed": len(queued), "status": "completed"})

    @api.get("/health")
    async def health(endpoint_id: str) -> JSONResponse:
        return JSONResponse(sim.health(endpoint_id))

    app.include_router(api)

    @app.get("/files/{name}")
    async def files(name: str) -> Response:
        # No auth: whoever gets the result URL may fetch it, like a public bucket link.
        job = sim.table.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if job is None or job.video is None:
            return _error(404, "file not found")
        return Response(content=job.video, media_type="video/mp4")

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/admin/jobs")
    async def admin_jobs() -> JSONResponse:
        return JSONResponse(
            {
                "run_calls": sim.table.run_calls,
                "runs_accepted": sim.table.runs_accepted,
                "answers_lost": sim.table.answers_lost,
                "retried": sim.table.retried,
                "cancel_requests": list(sim.table.cancel_requests),
                "api_requests": list(sim.table.api_requests),
                "faults": sim.faults.model_dump(),
                "jobs": [job.admin_view() for job in sim.table.all()],
            }
        )

    @app.post("/admin/faults")
    async def admin_faults(update: GlobalFaultsUpdate) -> JSONResponse:
        sim.faults.apply(update)
        return JSONResponse(sim.faults.model_dump())

    @app.post("/admin/scenarios")
    async def admin_add_scenario(spec: ScenarioSpec) -> JSONResponse:
        try:
            scenario = sim.scenarios.add(spec)
        except ValidationError as exc:
            raise ApiError(422, f"invalid sim knobs: {exc}") from exc
        return JSONResponse(scenario.model_dump(mode="json"), status_code=201)

    @app.get("/admin/scenarios")
    async def admin_scenarios() -> JSONResponse:
        return JSONResponse({"scenarios": [s.model_dump(mode="json") for s in sim.scenarios.all()]})

    @app.delete("/admin/scenarios")
    async def admin_clear_scenarios() -> JSONResponse:
        sim.scenarios.clear()
        return JSONResponse({"scenarios": []})

    @app.get("/admin/workers")
    async def admin_workers() -> JSONResponse:
        return JSONResponse(_pool_view(sim))

    @app.post("/admin/workers")
    async def admin_set_workers(update: PoolUpdate) -> JSONResponse:
        sim.runner.pool.update(update)
        return JSONResponse(_pool_view(sim))

    @app.get("/admin/limits")
    async def admin_limits() -> JSONResponse:
        return JSONResponse(sim.limiter.view())

    @app.post("/admin/limits")
    async def admin_set_limits(update: LimitsUpdate) -> JSONResponse:
        try:
            sim.limiter.update(update)
        except ValidationError as exc:
            raise ApiError(422, f"invalid limits: {exc}") from exc
        return JSONResponse(sim.limiter.view())

    @app.post("/admin/api-key")
    async def admin_api_key(body: dict[str, str]) -> JSONResponse:
        key = body.get("api_key", "")
        if not key:
            raise ApiError(422, "api_key must be a non-empty string")
        sim.api_key = key
        return JSONResponse({"status": "changed"})

    @app.post("/admin/endpoints")
    async def admin_endpoints(body: dict[str, list[str] | None]) -> JSONResponse:
        known = body.get("endpoints")
        sim.endpoints = None if known is None else set(known)
        return JSONResponse({"endpoints": None if known is None else sorted(known)})

    @app.post("/admin/reset")
    async def admin_reset() -> JSONResponse:
        sim.limiter.reset(settings.rate_limits())
        sim.api_key = settings.api_key
        sim.endpoints = None
        sim.runner.reset()
        sim.faults = GlobalFaults()
        sim.scenarios.clear()
        return JSONResponse({"status": "reset"})

    return app
