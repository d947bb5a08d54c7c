"""The simulator's admin routes (`/admin/...`): what happened (jobs, calls), and the knobs tests
turn (faults, scenarios, workers, limits, API key, endpoints, reset)."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import GlobalFaults, GlobalFaultsUpdate, ScenarioSpec
from openv_runpod_sim.limits import LimitsUpdate
from openv_runpod_sim.pool import PoolUpdate
from openv_runpod_sim.simulator import ApiError, Simulator


def _pool_view(sim: Simulator) -> dict[str, Any]:
    """The worker pool's settings (`POST /admin/workers` changes them) and its state."""
    pool = sim.runner.pool
    return {**pool.config.model_dump(), "busy": pool.busy, "idle": pool.idle}


def admin_router(sim: Simulator, settings: SimSettings) -> APIRouter:
    """The admin routes of `sim` (`settings`: what a reset returns to)."""
    admin = APIRouter(prefix="/admin")

    @admin.get("/jobs")
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

    @admin.post("/faults")
    async def admin_faults(update: GlobalFaultsUpdate) -> JSONResponse:
        sim.faults.apply(update)
        return JSONResponse(sim.faults.model_dump())

    @admin.post("/scenarios")
    async def admin_add_scenario(spec: ScenarioSpec) -> JSONResponse:
        try:
            scenario = sim.scenarios.add(spec)
        except ValidationError as exc:
            raise ApiError(422, f"invalid sim knobs: {exc}") from exc
        return JSONResponse(scenario.model_dump(mode="json"), status_code=201)

    @admin.get("/scenarios")
    async def admin_scenarios() -> JSONResponse:
        return JSONResponse({"scenarios": [s.model_dump(mode="json") for s in sim.scenarios.all()]})

    @admin.delete("/scenarios")
    async def admin_clear_scenarios() -> JSONResponse:
        sim.scenarios.clear()
        return JSONResponse({"scenarios": []})

    @admin.get("/workers")
    async def admin_workers() -> JSONResponse:
        return JSONResponse(_pool_view(sim))

    @admin.post("/workers")
    async def admin_set_workers(update: PoolUpdate) -> JSONResponse:
        sim.runner.pool.update(update)
        return JSONResponse(_pool_view(sim))

    @admin.get("/limits")
    async def admin_limits() -> JSONResponse:
        return JSONResponse(sim.limiter.view())

    @admin.post("/limits")
    async def admin_set_limits(update: LimitsUpdate) -> JSONResponse:
        try:
            sim.limiter.update(update)
        except ValidationError as exc:
            raise ApiError(422, f"invalid limits: {exc}") from exc
        return JSONResponse(sim.limiter.view())

    @admin.post("/api-key")
    async def admin_api_key(body: dict[str, str]) -> JSONResponse:
        key = body.get("api_key", "")
        if not key:
            raise ApiError(422, "api_key must be a non-empty string")
        sim.api_key = key
        return JSONResponse({"status": "changed"})

    @admin.post("/endpoints")
    async def admin_endpoints(body: dict[str, list[str] | None]) -> JSONResponse:
        known = body.get("endpoints")
        sim.endpoints = None if known is None else set(known)
        return JSONResponse({"endpoints": None if known is None else sorted(known)})

    @admin.post("/reset")
    async def admin_reset() -> JSONResponse:
        sim.limiter.reset(settings.rate_limits())
        sim.api_key = settings.api_key
        sim.endpoints = None
        sim.runner.reset()
        sim.faults = GlobalFaults()
        sim.scenarios.clear()
        return JSONResponse({"status": "reset"})

    return admin
