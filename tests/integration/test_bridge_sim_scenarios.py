"""The simulator's scenarios (`/admin/scenarios`), which let end-to-end tests put fault knobs on
jobs the bridge creates: matching on the prompt, merging with `input.sim`, /run faults."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from openv_localstack.ports import free_port
from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings

pytestmark = pytest.mark.integration

KEY = "scenario-key"


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    app = create_app(SimSettings(api_key=KEY, default_queue_s=0.01, log_level="warning"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # it failed to start: raise why
        await asyncio.sleep(0.01)
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
            yield c
    finally:
        server.should_exit = True
        await task


async def run(sim: httpx.AsyncClient, prompt: str, **sim_knobs: Any) -> httpx.Response:
    job_input: dict[str, Any] = {"positive_prompt": prompt, "num_frames": 7}
    if sim_knobs:
        job_input["sim"] = sim_knobs
    return await sim.post("/v2/ep/run", json={"input": job_input})


async def knobs_of(sim: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    jobs = (await sim.get("/admin/jobs")).json()["jobs"]
    found: dict[str, Any] = next(j for j in jobs if j["id"] == job_id)["knobs"]
    return found


async def test_scenarios_apply_to_matching_prompts_and_input_sim_wins(
    sim: httpx.AsyncClient,
) -> None:
    added = await sim.post(
        "/admin/scenarios",
        json={"prompt_contains": "[slow]", "sim": {"duration_s": 9, "drop_webhook": True}},
    )
    assert added.status_code == 201
    matched = (await run(sim, "a fox [slow]", duration_s=0.5)).json()["id"]
    other = (await run(sim, "a fox")).json()["id"]
    assert await knobs_of(sim, matched) == {"duration_s": 0.5, "drop_webhook": True}
    assert await knobs_of(sim, other) == {}
    [scenario] = (await sim.get("/admin/scenarios")).json()["scenarios"]
    assert (scenario["run_calls"], scenario["jobs"]) == (1, [matched])

    assert (await sim.delete("/admin/scenarios")).json() == {"scenarios": []}
    later = (await run(sim, "a fox [slow]")).json()["id"]
    assert await knobs_of(sim, later) == {}


async def test_scenario_run_faults_are_bursts_or_a_refusal(sim: httpx.AsyncClient) -> None:
    await sim.post("/admin/scenarios", json={"prompt_contains": "[b]", "run_429": 1, "run_500": 1})
    await sim.post("/admin/scenarios", json={"prompt_contains": "[r]", "reject_run": "no"})
    answers = [await run(sim, "x [b]") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 500, 200]
    assert answers[0].headers["Retry-After"] == "1"
    refused = await run(sim, "x [r]")
    assert (refused.status_code, refused.json()) == (400, {"error": "no"})
    assert len((await sim.get("/admin/jobs")).json()["jobs"]) == 1


async def test_bad_scenarios_are_refused(sim: httpx.AsyncClient) -> None:
    bad_knob = await sim.post(
        "/admin/scenarios", json={"prompt_contains": "x", "sim": {"duration_s": -1}}
    )
    assert bad_knob.status_code == 422
    assert (await sim.post("/admin/scenarios", json={"prompt_contains": ""})).status_code == 422
    assert (await sim.post("/admin/scenarios", json={"prompt": "x"})).status_code == 422
    assert (await sim.get("/admin/scenarios")).json() == {"scenarios": []}


async def test_policy_override_knobs_and_reset(sim: httpx.AsyncClient) -> None:
    job_id = (await run(sim, "x", hang=True, execution_timeout_s=0.3)).json()["id"]
    async with asyncio.timeout(10):
        while True:
            status = (await sim.get(f"/v2/ep/status/{job_id}")).json()
            if status["status"] == "TIMED_OUT":
                break
            await asyncio.sleep(0.05)
    assert status["error"] == "job exceeded executionTimeout of 300 ms"
    await sim.post("/admin/scenarios", json={"prompt_contains": "x"})
    await sim.post("/admin/reset")
    assert (await sim.get("/admin/scenarios")).json() == {"scenarios": []}
