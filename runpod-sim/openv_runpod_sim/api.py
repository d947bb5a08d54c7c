"""RunPod Serverless' HTTP API (`/v2/{endpoint_id}/...`): run, runsync, status, cancel, retry,
purge-queue and health, behind the API key and the known endpoints."""

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from openv_runpod_sim.faults import lost_answer
from openv_runpod_sim.jobs import RETRYABLE, JobStatus
from openv_runpod_sim.simulator import ApiError, Simulator, error_response

_DEFAULT_RUNSYNC_WAIT_MS = 90_000


def api_router(sim: Simulator) -> APIRouter:
    """The RunPod API routes of `sim`."""

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
            return error_response(429, "Too many requests (simulated)", {"Retry-After": "1"})
        if fault == 500:
            return error_response(500, "Internal server error (simulated)")
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
                return error_response(int(lost), "Gateway error (simulated; the job was created)")
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
            return error_response(500, "Internal server error (simulated)")
        return JSONResponse(sim.job_or_404(endpoint_id, job_id).status_body())

    @api.post("/cancel/{job_id}")
    async def cancel(endpoint_id: str, job_id: str) -> JSONResponse:
        # Recorded before the lookup: tests check who asked to cancel what, known or not.
        sim.table.cancel_requests.append(job_id)
        if sim.faults.take_cancel_error():
            return error_response(500, "Internal server error (simulated)")
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

    return api
