"""RunPod as it really behaves, through the whole stack (gateway -> jobs -> bridge ->
simulator): rate limits that answer 429 with no Retry-After, an API key RunPod refuses, and a
`/run` whose answer is lost after the job was created. None of them may fail a video or pay
for a GPU job twice."""

import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from openv_localstack.stack import RUNPOD_API_KEY, LocalStack
from tests.e2e.support import SMALL, Auth, wait_for

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}


def _create(api: httpx.Client, auth: Auth, prompt: str) -> tuple[str, dict[str, str]]:
    headers = auth(f"limits-{uuid.uuid4().hex[:10]}")
    created = api.post("/v1/videos", json={"prompt": prompt, **SMALL}, headers=headers)
    assert created.status_code == 202, created.text
    return str(created.json()["id"]), headers


def _video(api: httpx.Client, video_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = api.get(f"/v1/videos/{video_id}", headers=headers)
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


def _ended(api: httpx.Client, video_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    video = _video(api, video_id, headers)
    return video if video["status"] in TERMINAL else None


def _jobs(stack: LocalStack, marker: str) -> list[dict[str, Any]]:
    jobs = httpx.get(f"{stack.sim_url}/admin/jobs", timeout=30).json()["jobs"]
    return [j for j in jobs if marker in str(j["input"].get("positive_prompt"))]


@pytest.fixture
def strict_runpod(stack: LocalStack) -> Iterator[None]:
    """The simulator takes 2 `/run` calls per 4 s window (RunPod's 1,000 per 10 s scaled
    down), and answers the rest 429 without Retry-After; the bridge believes RunPod's real
    limits (1,000 per window; the stack's window is 3 s, see conftest.py)."""
    answer = httpx.post(
        f"{stack.sim_url}/admin/limits", json={"limits": {"run_per_window": 2, "window_s": 4}}
    )
    assert answer.status_code == 200, answer.text
    try:
        yield
    finally:
        httpx.post(f"{stack.sim_url}/admin/limits", json={"off": True})


def test_a_burst_over_runpods_rate_limit_fails_no_video(
    api: httpx.Client, auth: Auth, stack: LocalStack, strict_runpod: None
) -> None:
    marker = f"[burst-{uuid.uuid4().hex[:8]}]"
    videos = [_create(api, auth, f"a fox {marker} {n}") for n in range(6)]
    ended = [wait_for("the burst to end", partial(_ended, api, *v), timeout=90) for v in videos]
    assert [video["status"] for video in ended] == ["completed"] * 6, ended
    assert len(_jobs(stack, marker)) == 6  # one GPU job each
    limits = httpx.get(f"{stack.sim_url}/admin/limits").json()
    assert limits["throttled"].get("run", 0) > 0, limits  # RunPod's 429s really came


def test_a_refused_api_key_is_an_outage_not_a_verdict(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    bridge_admin = stack.admin_url_of("runpod-bridge")
    rotated = httpx.post(f"{stack.sim_url}/admin/api-key", json={"api_key": "rotated-elsewhere"})
    assert rotated.status_code == 200, rotated.text
    try:
        marker = f"[key-{uuid.uuid4().hex[:8]}]"
        videos = [_create(api, auth, f"a heron {marker} {n}") for n in range(3)]
        ready = wait_for(
            "the bridge to say RunPod refuses it",
            lambda: (r := httpx.get(f"{bridge_admin}/readyz")).status_code == 503 and r,
        )
        assert ready.json()["checks"]["runpod"] is False, ready.text
        time.sleep(3)  # several submission retries and reconciler passes
        assert {_video(api, *v)["status"] for v in videos} == {"queued"}
        assert _jobs(stack, marker) == []
    finally:
        restored = httpx.post(f"{stack.sim_url}/admin/api-key", json={"api_key": RUNPOD_API_KEY})
        assert restored.status_code == 200, restored.text
    ended = [wait_for("the videos to end", partial(_ended, api, *v), timeout=90) for v in videos]
    assert [video["status"] for video in ended] == ["completed"] * 3, ended
    assert len(_jobs(stack, marker)) == 3
    wait_for(
        "the bridge to be ready", lambda: httpx.get(f"{bridge_admin}/readyz").status_code == 200
    )


def test_a_lost_run_answer_makes_one_gpu_job(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    """RunPod created the job but its answer never came back (its edge answered 504): the
    bridge waits for that job (it reports with the attempt's marker in its echoed input)
    instead of sending the video again, so it renders once. (A lost answer by timeout is
    covered in tests/integration/test_bridge_lost_answers.py, where the job outlasts it.)"""
    marker = f"[lost-{uuid.uuid4().hex[:8]}]"
    scenario = {
        "prompt_contains": marker,
        "sim": {"duration_s": 4},
        "lose_run_answers": 1,
        "lost_run_answer_as": "504",
    }
    answer = httpx.post(f"{stack.sim_url}/admin/scenarios", json=scenario)
    assert answer.status_code == 201, answer.text
    video_id, headers = _create(api, auth, f"a lighthouse {marker}")
    video = wait_for(
        "the video to end",
        lambda: _ended(api, video_id, headers),
        timeout=120,
    )
    assert video["status"] == "completed", video
    [job] = _jobs(stack, marker)
    assert job["status"] == "COMPLETED"
