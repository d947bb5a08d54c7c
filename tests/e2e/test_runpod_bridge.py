"""The RunPod bridge against every simulator fault, over real sockets: gateway -> jobs -> bridge
-> simulator -> webhook/poll -> bridge -> jobs.

Knobs reach jobs created through the gateway via simulator scenarios (`POST /admin/scenarios`,
matched on a marker in the prompt). The scenario videos are all started at once by a
module fixture (one user each, so limits do not interfere) and each test then checks its own.
"""

import asyncio
import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import av
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from openv_contracts import topics
from openv_localstack.stack import BUCKET, RUNPOD_API_KEY, LocalStack
from openv_localstack.tokens import make_token
from tests.e2e.support import SMALL, Auth, wait_for

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}
TERMINAL_EVENTS = {"VideoCompleted", "VideoFailed", "VideoCancelled", "VideoTimedOut"}
REFERENCE_INPUT = {
    "positive_prompt",
    "negative_prompt",
    "width",
    "height",
    "seed",
    "steps",
    "cfg",
    "num_frames",
    "output_put_url",
    "output_key",
    "openv",  # the attempt's marker (domain.ambiguity)
}
RUN = uuid.uuid4().hex[:8]  # keeps markers unique if the stack is shared with other modules


@dataclass(frozen=True)
class Case:
    name: str
    expect: str
    sim: dict[str, Any] = field(default_factory=dict)
    run_429: int = 0
    run_500: int = 0
    reject_run: str | None = None

    @property
    def marker(self) -> str:
        return f"[{RUN}:{self.name}]"


CASES = {
    c.name: c
    for c in [
        Case("plain", "completed"),
        Case("slow", "completed", {"duration_s": 4, "progress_format": "dict_percent"}),
        Case("raises", "failed", {"fail": "CUDA out of memory"}),
        Case("output_error", "failed", {"output_error": "prompt refused by the safety filter"}),
        Case("failed_result", "failed", {"failed_result": "no GPU available"}),
        Case("drop_webhook", "completed", {"drop_webhook": True}),
        Case("duplicate_webhook", "completed", {"duplicate_webhook": 3}),
        Case("late_webhook", "completed", {"webhook_delay_s": 6}),
        Case("progress_after_complete", "completed", {"progress_after_complete": True}),
        Case("non_json_webhook", "completed", {"non_json_webhook": True}),
        Case("run_429_burst", "completed", run_429=2),
        Case("run_500_burst", "completed", run_500=2),
        Case("rejected", "failed", reject_run="input rejected: prompt too long for this model"),
        Case("hang", "timed_out", {"hang": True, "execution_timeout_s": 2}),
        Case("ttl_gone", "timed_out", {"hang": True, "ttl_s": 2}),
        # RunPod's queue: a cold start the bridge waits out; a ttl that runs out before any
        # worker takes the job (RunPod deletes it, /status 404s).
        Case("cold_start", "completed", {"cold_start_s": 6}),
        Case("ttl_in_queue", "timed_out", {"queue_s": 60, "ttl_s": 3}),
        # Cancelled on RunPod's side (the console, another client): RunPod may send no
        # webhook for it, so only the reconciler's polls can see it.
        Case("cancelled_at_runpod", "cancelled", {"hang": True, "cancel_after_s": 4}),
        Case("upload_fail", "failed", {"upload_fail": True}),
        Case("result_url", "running", {"result_url": True}),
        # Real workers' output shapes (../shared/runpod.md, "Worker output").
        Case("openv_success", "completed", {"output_style": "openv_success", "no_progress": True}),
        Case("openv_done", "completed", {"output_style": "openv_done", "no_progress": True}),
        Case("openv_error", "failed", {"output_style": "openv_error", "output_error": "NSFW"}),
        Case("comfy_s3_url", "completed", {"output_style": "comfy_s3_url"}),
        Case("comfy_base64", "completed", {"output_style": "comfy_base64"}),
        # Over the bridge's 1 MB webhook limit: the bridge reads it from /status.
        Case(
            "comfy_base64_large",
            "completed",
            {"output_style": "comfy_base64", "output_min_bytes": 1_200_000},
        ),
        Case("output_none", "failed", {"output_style": "none"}),
        Case("output_empty_dict", "failed", {"output_style": "empty_dict"}),
        Case("output_empty_list", "failed", {"output_style": "empty_list"}),
        Case(
            "timeout_as_failed",
            "timed_out",
            {"hang": True, "execution_timeout_s": 2, "timeout_as_failed": True},
        ),
    ]
}
#: Cases whose video ends as a file in the bucket, put there by the worker or the bridge.
PLAYABLE = {"plain", "openv_success", "openv_done", "comfy_s3_url", "comfy_base64"}
PLAYABLE |= {"comfy_base64_large"}


@dataclass
class Launched:
    case: Case
    video_id: str
    user: str
    headers: dict[str, str]


class Sim:
    def __init__(self, stack: LocalStack) -> None:
        self.url = stack.sim_url

    def scenario(self, case: Case) -> None:
        body = {
            "prompt_contains": case.marker,
            "sim": case.sim,
            "run_429": case.run_429,
            "run_500": case.run_500,
            "reject_run": case.reject_run,
        }
        response = httpx.post(f"{self.url}/admin/scenarios", json=body)
        assert response.status_code == 201, response.text

    def admin(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/admin/jobs", timeout=30)
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        return data

    def jobs(self, marker: str) -> list[dict[str, Any]]:
        return [j for j in self.admin()["jobs"] if marker in str(j["input"].get("positive_prompt"))]

    def job(self, marker: str) -> dict[str, Any]:
        [job] = self.jobs(marker)
        return job

    def job_in(self, marker: str, statuses: set[str]) -> dict[str, Any] | None:
        """The marker's one job once it is in one of `statuses`, else None."""
        jobs = self.jobs(marker)
        return jobs[0] if len(jobs) == 1 and jobs[0]["status"] in statuses else None

    def scenario_state(self, marker: str) -> dict[str, Any]:
        scenarios = httpx.get(f"{self.url}/admin/scenarios").json()["scenarios"]
        [found] = [s for s in scenarios if s["spec"]["prompt_contains"] == marker]
        state: dict[str, Any] = found
        return state


@pytest.fixture(scope="module")
def sim(stack: LocalStack) -> Sim:
    return Sim(stack)


def create(api: httpx.Client, headers: dict[str, str], prompt: str) -> str:
    created = api.post("/v1/videos", json={"prompt": prompt, **SMALL}, headers=headers)
    assert created.status_code == 202, created.text
    video_id: str = created.json()["id"]
    return video_id


def get_video(api: httpx.Client, launched: Launched) -> dict[str, Any]:
    response = api.get(f"/v1/videos/{launched.video_id}", headers=launched.headers)
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


def wait_status(api: httpx.Client, launched: Launched, statuses: set[str]) -> dict[str, Any]:
    video: dict[str, Any] = wait_for(
        f"{launched.case.name} to reach {statuses}",
        lambda: (v := get_video(api, launched))["status"] in statuses and v,
    )
    return video


#: Added to a completed video whenever the storage service has made its poster, so the status
#: histories compared here leave it out (test_walking_skeleton checks the poster itself).
ANNOTATIONS = {"VideoPosterAdded"}


def history(
    api: httpx.Client, launched: Launched, *, annotations: bool = False
) -> list[dict[str, Any]]:
    """The video's events; without `annotations`, its status history only."""
    response = api.get(f"/v1/videos/{launched.video_id}/events", headers=launched.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events if annotations else [e for e in events if e["type"] not in ANNOTATIONS]


def launch(api: httpx.Client, auth: Auth, sim: Sim, case: Case) -> Launched:
    sim.scenario(case)
    user = f"bridge-{case.name}-{uuid.uuid4().hex[:8]}"
    headers = auth(user)
    video_id = create(api, headers, f"a lighthouse at dusk {case.marker}")
    return Launched(case, video_id, user, headers)


@pytest.fixture(scope="module")
def launched(api: httpx.Client, sim: Sim) -> dict[str, Launched]:
    """Every scenario's video, started together so the module runs in about the time of the
    slowest one."""

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user)}"}

    # Each create waits for the jobs service's decision: send them side by side.
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = pool.map(lambda case: launch(api, auth, sim, case), CASES.values())
        return {run.case.name: run for run in runs}


async def bridge_rows(stack: LocalStack, video_ids: list[str]) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(stack.postgres.dsn_for("openv_bridge"))
    try:
        rows = await conn.fetch(
            "SELECT * FROM runpod_submissions WHERE video_id = ANY($1::uuid[])", video_ids
        )
    finally:
        await conn.close()
    return {str(r["video_id"]): dict(r) for r in rows}


async def runpod_facts(bootstrap: str, video_id: str, fact_type: str) -> list[dict[str, Any]]:
    """Facts of `fact_type` for the video on the bridge's Kafka topic, read from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topics.RUNPOD_EVENTS) or set()
        assigned = [TopicPartition(topics.RUNPOD_EVENTS, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope["type"] == fact_type and envelope["data"]["video_id"] == video_id:
                        found.append(envelope)
            positions = {tp: await consumer.position(tp) for tp in assigned}
            if all(positions[tp] >= ends[tp] for tp in assigned):
                break
        return found
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- every knob


@pytest.mark.parametrize("name", [n for n in CASES if n != "result_url"])
def test_each_fault_ends_in_the_right_terminal_state(
    name: str, api: httpx.Client, sim: Sim, launched: dict[str, Launched], stack: LocalStack
) -> None:
    run = launched[name]
    case = run.case
    video = wait_status(api, run, TERMINAL)
    assert video["status"] == case.expect, video
    events = history(api, run)
    types = [e["type"] for e in events]
    terminal = [t for t in types if t in TERMINAL_EVENTS]
    assert len(terminal) == 1, types  # duplicates and late reports changed nothing
    assert types[-1] == terminal[0], types  # nothing after the end
    everything = [e["type"] for e in history(api, run, annotations=True)]
    if "VideoPosterAdded" in everything:  # a poster only for a completed video, after it
        assert everything.count("VideoPosterAdded") == 1, everything
        assert everything.index("VideoPosterAdded") > everything.index("VideoCompleted")

    jobs = sim.jobs(case.marker)  # those RunPod still keeps (not past their ttl)
    scenario = sim.scenario_state(case.marker)
    # Exactly one RunPod job per video (none when refused), after exactly the /run calls the
    # faults asked for.
    assert len(scenario["jobs"]) == (0 if case.reject_run else 1), scenario
    assert scenario["run_calls"] == 1 + case.run_429 + case.run_500, scenario

    error = video["error"]
    match name:
        case "plain":
            job = jobs[0]
            assert video["progress"] == 100
            assert set(job["input"]) == REFERENCE_INPUT
            assert job["input"]["output_key"] == f"videos/{run.user}/{run.video_id}/video.mp4"
            assert job["policy"] == {"executionTimeout": 600_000, "ttl": 86_400_000}
            bridge = stack.url_of("runpod-bridge")
            assert job["webhook"].startswith(f"{bridge}/webhooks/runpod/{run.video_id}?token=")
            size = stack.s3.client().stat_object(BUCKET, job["input"]["output_key"]).size
            assert size == video["video"]["size_bytes"] > 0
        case "slow":
            # No webhook says "running": only the reconciler's polls of /status can.
            assert "VideoRunning" in types
            progress = [e["data"].get("progress") or 0 for e in events]
            assert max(progress) > 0, events
        case "raises":
            assert error == {"code": "worker_failed", "message": "CUDA out of memory"}
        case "output_error":
            assert error["code"] == "worker_failed"
            assert error["message"] == "prompt refused by the safety filter"
        case "failed_result":
            assert error == {"code": "worker_failed", "message": "FAILED: no GPU available"}
        case "drop_webhook":
            assert jobs[0]["webhook_attempts"] == 0
        case "duplicate_webhook":
            done = wait_for("4 deliveries", lambda: sim.job(case.marker)["webhooks_delivered"] == 4)
            assert done
            assert [e["type"] for e in history(api, run)] == types
        case "late_webhook":
            # A poll saw the result first; the webhook that comes later changes nothing.
            # Under load one attempt may time out; RunPod retries, and one must be accepted.
            delivered = wait_for(
                "the late webhook accepted",
                lambda: [h for h in sim.job(case.marker)["webhook_log"] if h["http_status"] == 200],
            )
            completed_at = datetime.fromisoformat(video["completed_at"]).timestamp()
            assert completed_at < delivered[0]["at"]
            assert [e["type"] for e in history(api, run)] == types
        case "progress_after_complete":
            log = wait_for(
                "the stale IN_PROGRESS webhook",
                lambda: (
                    len(sim.job(case.marker)["webhook_log"]) == 2
                    and sim.job(case.marker)["webhook_log"]
                ),
            )
            assert [(h["status"], h["http_status"]) for h in log] == [
                ("COMPLETED", 200),
                ("IN_PROGRESS", 200),
            ]
            assert get_video(api, run)["status"] == "completed"
            assert [e["type"] for e in history(api, run)] == types
        case "non_json_webhook":
            log = wait_for(
                "3 refused deliveries",
                lambda: (
                    len(sim.job(case.marker)["webhook_log"]) == 3
                    and sim.job(case.marker)["webhook_log"]
                ),
            )
            assert {h["http_status"] for h in log} == {400}
        case "run_429_burst" | "run_500_burst":
            assert video["progress"] == 100
        case "rejected":
            assert jobs == []
            assert error == {"code": "runpod_rejected", "message": case.reject_run}
        case "hang":
            # TIMED_OUT, and RunPod's error says it was the execution timeout.
            assert error["code"] == "execution_timeout"
            assert "executionTimeout of 2000 ms" in error["message"]
        case "timeout_as_failed":
            assert jobs[0]["status"] == "FAILED"
            assert error["code"] == "execution_timeout"
            assert "executionTimeout of 2000 ms" in error["message"]
        case "openv_success" | "openv_done":
            # The OpenV worker reports no progress: the video still completes at 100.
            assert "VideoRunning" not in types or all(
                not e["data"].get("progress") for e in events if e["type"] == "VideoRunning"
            )
            assert video["progress"] == 100
        case "openv_error":
            assert jobs[0]["status"] == "FAILED"
            assert error == {"code": "worker_failed", "message": "NSFW"}
        case "comfy_base64_large":
            # The body was over the limit: answered 200 unread, the result read from /status.
            log = jobs[0]["webhook_log"]
            assert [h["http_status"] for h in log] == [200], log
            assert video["video"]["size_bytes"] >= 1_200_000
        case "output_none" | "output_empty_dict" | "output_empty_list":
            assert jobs[0]["status"] == "COMPLETED"
            assert error["code"] == "output_missing"
        case "ttl_gone":
            assert jobs == []  # RunPod deleted it at its ttl
            assert error["code"] == "timed_out"
            assert "404" in error["message"]
        case "upload_fail":
            assert error["code"] == "output_missing"
        case "cold_start":
            assert jobs[0]["delayTime"] >= 6000, jobs[0]
            assert video["progress"] == 100
        case "ttl_in_queue":
            assert jobs == []  # deleted at its ttl, never run
            assert "VideoRunning" not in types, types
            assert error["code"] == "timed_out"
        case "cancelled_at_runpod":
            job = jobs[0]
            assert job["status"] == "CANCELLED"
            assert (job["cancel_requests"], job["webhook_attempts"]) == (0, 0), job
    if name in PLAYABLE:
        assert_playable_at_the_videos_key(stack, run, video)


def assert_playable_at_the_videos_key(
    stack: LocalStack, run: Launched, video: dict[str, Any]
) -> None:
    key = f"videos/{run.user}/{run.video_id}/video.mp4"
    response = stack.s3.client().get_object(BUCKET, key)
    try:
        mp4 = response.read()
    finally:
        response.close()
        response.release_conn()
    assert len(mp4) == video["video"]["size_bytes"]
    assert mp4[4:8] == b"ftyp"
    with av.open(io.BytesIO(mp4), mode="r") as container:
        frames = list(container.decode(container.streams.video[0]))
    assert len(frames) == SMALL["num_frames"]


def test_a_result_url_is_handed_to_storage_as_a_fact(
    sim: Sim, launched: dict[str, Launched], stack: LocalStack
) -> None:
    run = launched["result_url"]
    job = wait_for(
        "the result-URL job to complete",
        lambda: (j := sim.jobs(run.case.marker)) and j[0]["status"] == "COMPLETED" and j[0],
    )

    def published() -> list[dict[str, Any]]:
        return asyncio.run(
            runpod_facts(stack.kafka.bootstrap, run.video_id, "RunPodJobOutputAtUrl")
        )

    facts = wait_for("RunPodJobOutputAtUrl on Kafka", published)
    # A webhook and a poll may both see the end: then both publish it, with one event id, so
    # the consumer records it once.
    assert len({f["event_id"] for f in facts}) == 1, facts
    fact = facts[0]
    assert fact["data"]["url"] == job["output"]["result"]
    assert fact["data"]["object_key"] == f"videos/{run.user}/{run.video_id}/video.mp4"
    assert fact["data"]["runpod_job_id"] == job["id"]
    assert len(sim.jobs(run.case.marker)) == 1


def test_no_job_is_left_in_flight(launched: dict[str, Launched], stack: LocalStack) -> None:
    """After the scenarios, the bridge watches none of them any more."""

    def settled() -> dict[str, dict[str, Any]] | None:
        rows = asyncio.run(bridge_rows(stack, [r.video_id for r in launched.values()]))
        return rows if all(r["state"] == "finished" for r in rows.values()) else None

    rows = wait_for("every submission to be finished", settled)
    assert set(rows) == {r.video_id for r in launched.values()}
    assert rows[launched["rejected"].video_id]["runpod_job_id"] is None
    assert all(r["runpod_job_id"] for n, r in rows.items() if n != launched["rejected"].video_id)


# --------------------------------------------------------------------------- forged webhooks


def test_forged_webhooks_change_nothing(
    api: httpx.Client, auth: Auth, sim: Sim, stack: LocalStack
) -> None:
    target = launch(api, auth, sim, Case("forged", "completed", {"duration_s": 4}))
    bystander = launch(api, auth, sim, Case("bystander", "completed", {"duration_s": 4}))
    job = wait_for(
        "the target's job", lambda: sim.jobs(target.case.marker) and sim.job(target.case.marker)
    )
    other = wait_for(
        "the bystander's job",
        lambda: sim.jobs(bystander.case.marker) and sim.job(bystander.case.marker),
    )
    wait_status(api, target, {"submitted", "running"})
    wait_status(api, bystander, {"submitted", "running"})
    hook = job["webhook"]
    bridge = stack.url_of("runpod-bridge")
    completed = {"id": job["id"], "status": "COMPLETED", "output": {"key": "x"}}

    def post(url: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(url, content=content, headers={"Content-Type": "application/json"})

    # A bad token: the same 404 whether or not the video exists.
    unknown_video = post(f"{bridge}/webhooks/runpod/{uuid.uuid4()}?token={'0' * 64}", completed)
    bad_token = post(f"{bridge}/webhooks/runpod/{target.video_id}?token={'0' * 64}", completed)
    no_token = post(f"{bridge}/webhooks/runpod/{target.video_id}", completed)
    assert unknown_video.status_code == bad_token.status_code == no_token.status_code == 404
    assert unknown_video.json() == bad_token.json() == no_token.json()

    # The right token, but not this video's job: refused, and nothing is cancelled, since
    # RunPod does not show either job is this video's (the fake one does not exist at all).
    # A job id that is not a RunPod id is refused before any RunPod call.
    fake_job = f"{uuid.uuid4()}-u1"
    assert post(hook, {**completed, "id": fake_job}).status_code == 409
    assert post(hook, {**completed, "id": other["id"]}).status_code == 409
    assert post(hook, {**completed, "id": "../purge-queue"}).status_code == 400
    cancels = sim.admin()["cancel_requests"]
    assert fake_job not in cancels
    assert other["id"] not in cancels and job["id"] not in cancels

    # Bodies that are not a RunPod report.
    bodies: list[Any] = [b"<html>oops</html>", [], {"status": "COMPLETED"}, {"id": job["id"]}]
    for body in bodies:
        assert post(hook, body).status_code == 400, body
    assert post(hook, {"id": job["id"], "status": "DONE"}).status_code == 400

    for run in (target, bystander):
        video = wait_status(api, run, TERMINAL)
        assert video["status"] == "completed", video
        types = [e["type"] for e in history(api, run)]
        assert types.count("VideoCompleted") == 1 and "VideoFailed" not in types, types
        assert len(sim.jobs(run.case.marker)) == 1


# --------------------------------------------------------------------------- cancel / delete


def test_cancelling_or_deleting_a_video_in_flight_cancels_its_runpod_job(
    api: httpx.Client, auth: Auth, sim: Sim
) -> None:
    cancelled = launch(api, auth, sim, Case("cancel_me", "cancelled", {"hang": True}))
    deleted = launch(api, auth, sim, Case("delete_me", "deleted", {"hang": True}))
    for run in (cancelled, deleted):
        marker = run.case.marker
        wait_for(f"{marker} to run", lambda: sim.job_in(marker, {"IN_PROGRESS"}))  # noqa: B023
        wait_status(api, run, {"submitted", "running"})

    answer = api.post(f"/v1/videos/{cancelled.video_id}/cancel", headers=cancelled.headers)
    assert answer.status_code == 202, answer.text
    answer = api.delete(f"/v1/videos/{deleted.video_id}", headers=deleted.headers)
    assert answer.status_code in {200, 202}, answer.text

    for run in (cancelled, deleted):
        marker = run.case.marker
        job = wait_for(f"{marker} cancelled", lambda: sim.job_in(marker, {"CANCELLED"}))  # noqa: B023
        assert job["cancel_requests"] == 1
        assert get_video(api, run)["status"] == run.case.expect


# --------------------------------------------------------------------------- restart


def test_a_bridge_restart_with_a_lost_webhook_still_completes_via_the_reconciler(
    api: httpx.Client, auth: Auth, sim: Sim, stack: LocalStack
) -> None:
    run = launch(
        api, auth, sim, Case("restart", "completed", {"duration_s": 3, "drop_webhook": True})
    )
    wait_status(api, run, {"submitted", "running"})
    stack.restart_service("runpod-bridge")
    video = wait_status(api, run, TERMINAL)
    assert video["status"] == "completed", video
    job = sim.job(run.case.marker)
    assert job["webhook_attempts"] == 0
    assert len(sim.jobs(run.case.marker)) == 1


# --------------------------------------------------------------------------- long queue


def test_jobs_queued_behind_one_worker_all_complete(
    api: httpx.Client, auth: Auth, sim: Sim
) -> None:
    """An endpoint with one worker: the videos wait IN_QUEUE behind each other (the wait shows
    in delayTime) and every one still completes."""

    def running() -> list[dict[str, Any]]:
        return [j for j in sim.admin()["jobs"] if j["status"] == "IN_PROGRESS"]

    wait_for("no RunPod job running", lambda: not running())
    before = httpx.get(f"{sim.url}/admin/workers").json()["max_workers"]
    assert httpx.post(f"{sim.url}/admin/workers", json={"max_workers": 1}).status_code == 200
    try:
        runs = [
            launch(api, auth, sim, Case(f"long_queue_{i}", "completed", {"duration_s": 2.5}))
            for i in range(3)
        ]
        for run in runs:
            video = wait_status(api, run, TERMINAL)
            assert video["status"] == "completed", video
        delays = sorted(sim.job(run.case.marker)["delayTime"] for run in runs)
        assert delays[1] >= 1500 and delays[2] >= 3000, delays
    finally:
        httpx.post(f"{sim.url}/admin/workers", json={"max_workers": before})


def test_a_bridge_outage_past_runpods_retention_loses_no_finished_video(
    api: httpx.Client, auth: Auth, sim: Sim, stack: LocalStack
) -> None:
    """The job finishes and uploads while the bridge is down (its webhook fails), RunPod then
    forgets it (404, retention shortened to 1 s): the restarted bridge looks in the bucket
    before declaring it timed out, and the video completes."""
    run = launch(api, auth, sim, Case("outage", "completed", {"duration_s": 3, "retention_s": 1}))
    wait_status(api, run, {"submitted", "running"})
    stack.stop_service("runpod-bridge")
    try:
        job = wait_for("the job to finish", lambda: sim.job_in(run.case.marker, {"COMPLETED"}))
        status_url = f"{stack.sim_url}/v2/{job['endpoint_id']}/status/{job['id']}"
        headers = {"Authorization": f"Bearer {RUNPOD_API_KEY}"}
        wait_for(
            "RunPod to forget the job",
            lambda: httpx.get(status_url, headers=headers).status_code == 404,
        )
        assert get_video(api, run)["status"] in {"submitted", "running"}
    finally:
        stack.start_service("runpod-bridge")

    video = wait_status(api, run, TERMINAL)
    assert video["status"] == "completed", video
    s3 = stack.s3.client()
    key = f"videos/{run.user}/{run.video_id}/video.mp4"
    head = s3.get_object(BUCKET, key, offset=0, length=8)
    try:
        assert head.read()[4:8] == b"ftyp"
    finally:
        head.close()
        head.release_conn()
    prefix = f"videos/{run.user}/{run.video_id}/uploads/"
    staged = list(s3.list_objects(BUCKET, prefix=prefix, recursive=True))
    assert staged == []
