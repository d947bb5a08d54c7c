"""Reads on the real stack are served from the gateway's own view of the video, folded from the
video-events topic: once a video is known, polls (and its changes, to completion) cost the
jobs service no read. Counted by the gateway's own metric of its reads of the jobs service."""

import re
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from openv_localstack.stack import LocalStack

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]
SMALL = {"width": 384, "height": 384, "num_frames": 7}
TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}
_LOADS = re.compile(r"^openv_gateway_video_loads_total ([0-9.e+]+)$", re.MULTILINE)


def jobs_video_reads(stack: LocalStack) -> float:
    """How many times the gateway has read a video from the jobs service so far."""
    text = httpx.get(f"{stack.admin_url_of('gateway')}/metrics", timeout=5).text
    [count] = _LOADS.findall(text)
    return float(count)


def test_polls_to_completion_cost_the_jobs_service_no_read(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(f"reads-{uuid.uuid4()}")
    created = api.post("/v1/videos", json={"prompt": "polled fox", **SMALL}, headers=headers)
    assert created.status_code == 202, created.text
    path = f"/v1/videos/{created.json()['id']}"
    assert api.get(path, headers=headers).status_code == 200  # known here from now on
    before = jobs_video_reads(stack)
    # The count is live: a video the gateway does not know is asked of the jobs service.
    assert api.get(f"/v1/videos/{uuid.uuid4()}", headers=headers).status_code == 404
    assert jobs_video_reads(stack) == before + 1
    before += 1
    statuses: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        video = api.get(path, headers=headers).json()
        if not statuses or statuses[-1] != video["status"]:
            statuses.append(video["status"])
        if video["status"] in TERMINAL:
            break
        time.sleep(0.1)  # within the per-user rate limit (20/s)
    assert statuses[-1] == "completed", statuses
    for _ in range(20):
        assert api.get(path, headers=headers).json()["status"] == "completed"
        time.sleep(0.1)
    # Every change reached the gateway as an event, and it folded it: no read at all.
    assert jobs_video_reads(stack) == before, (statuses, jobs_video_reads(stack) - before)
