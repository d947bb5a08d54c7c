"""RunPod's limits and a refused key against the real simulator (its limits switched on) and
a real Postgres, with the bridge's service layer and reconciler (the harness of
test_bridge_service.py): a burst RunPod throttles, and a key RunPod refuses for a while,
fail no video; both end with every video holding exactly one RunPod job."""

from uuid import UUID

import httpx
from fastapi import FastAPI

from openv_bridge.main import runpod_check, runpod_client_options
from openv_bridge.service_layer.reconciler import Sweep
from openv_contracts import Envelope
from openv_infra.admin import create_admin_app
from openv_infra.health import install_readiness
from openv_runpod_sim.limits import LimitsUpdate
from tests.integration import test_bridge_service
from tests.integration.test_bridge_service import (
    API_KEY,
    Harness,
    HarnessFactory,
    accepted,
    vid,
)

#: The bridge harness fixture (a fresh database, simulator and bridge per test).
harness = test_bridge_service.harness


def jobs_per_video(h: Harness, videos: list[Envelope]) -> dict[UUID, int]:
    counts = {vid(e): 0 for e in videos}
    for job in h.jobs():
        key = job.input["output_key"]
        for video_id in counts:
            if str(video_id) in key:
                counts[video_id] += 1
    return counts


def submitted_all(h: Harness, videos: list[Envelope]) -> bool:
    return all(h.facts.of(vid(e), "RunPodJobSubmitted") for e in videos)


async def test_a_burst_runpod_throttles_fails_no_video(harness: HarnessFactory) -> None:
    """/run limited to 20 per window (RunPod's 1,000 per 10 s scaled down, the window to 2 s):
    60 videos in one burst. Before, 429s were retried within the window and counted as failed
    attempts: most of the burst failed with runpod_failed."""
    async with harness(
        runpod_rate_window_s=2.0,  # the bridge knows RunPod's window, not this lower rate
        runpod_throttle_jitter_s=0.5,
        submit_max_attempts=2,
    ) as h:
        h.sim.limiter.update(LimitsUpdate(limits={"run_per_window": 20, "window_s": 2.0}))
        videos = [accepted(prompt=f"burst {i}", user=f"u{i % 7}") for i in range(60)]
        for first in range(0, 60, 64):  # as the consumer hands them over
            await h.bridge.submit_new(videos[first : first + 64])

        await h.sweep_until(lambda _: submitted_all(h, videos), wait_s=60)
        assert h.sim.limiter.throttled["run"] > 0  # RunPod did say 429
        assert [e for e in h.facts.published if e.type == "RunPodJobFailed"] == []
        assert set(jobs_per_video(h, videos).values()) == {1}
        # No retry inside a window RunPod already refused: a 429 rests /run past the window.
        assert h.sim.limiter.throttled["run"] <= 60


async def test_the_bridge_keeps_runpods_rate_itself_when_it_knows_it(
    harness: HarnessFactory,
) -> None:
    # The bridge's window is a fifth longer than RunPod's: the margin is for transit, not for
    # pacing (on a loaded CI machine the end of one of the bridge's windows once reached
    # RunPod in its next, and 10 calls were refused).
    async with harness(runpod_rate_window_s=2.4, runpod_run_per_window=20) as h:
        h.sim.limiter.update(LimitsUpdate(limits={"run_per_window": 20, "window_s": 2.0}))
        videos = [accepted(prompt=f"paced {i}") for i in range(50)]
        await h.bridge.submit_new(videos)
        await h.sweep_until(lambda _: submitted_all(h, videos), wait_s=60)
        assert h.sim.limiter.throttled["run"] == 0
        assert set(jobs_per_video(h, videos).values()) == {1}


async def readiness(h: Harness) -> httpx.Response:
    app = FastAPI()
    install_readiness(app, {"runpod": runpod_check(h.runpod)})
    transport = httpx.ASGITransport(app=create_admin_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as admin:
        return await admin.get("/readyz")


async def misconfigured_metric(h: Harness) -> str:
    transport = httpx.ASGITransport(app=create_admin_app(FastAPI()))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as admin:
        text = (await admin.get("/metrics")).text
    [line] = [x for x in text.splitlines() if x.startswith("openv_bridge_runpod_misconfigured ")]
    return line.split()[1]


async def test_a_key_runpod_refuses_for_a_while_fails_no_video(harness: HarnessFactory) -> None:
    """Before, every /run answered 401 failed its video for good (runpod_rejected)."""
    async with harness(submit_max_attempts=2) as h:
        assert runpod_client_options(h.settings)["limits"]["run"].per_window == 1000
        h.sim.api_key = "rotated-at-runpod"  # our key is now refused with 401
        videos = [accepted(prompt=f"during the outage {i}") for i in range(6)]
        await h.bridge.submit_new(videos[:3])
        await h.bridge.on_video_event(videos[3])
        assert (await readiness(h)).status_code == 503
        assert (await readiness(h)).json()["checks"] == {"runpod": False}
        assert await misconfigured_metric(h) == "1.0"

        calls_before = len(h.sim.table.api_requests)
        await h.bridge.submit_new(videos[4:])  # not even sent while RunPod refuses us
        for _ in range(4):  # the reconciler only probes /health meanwhile
            assert await h.reconciler.run_once() == Sweep()
        probes = h.sim.table.api_requests[calls_before:]
        assert probes == ["GET /v2/openv-mochi/health"] * 4
        assert h.facts.published == []
        for video in videos:
            row = await h.row(vid(video))
            assert row.state == "submitting" and row.attempts <= 1

        h.sim.api_key = API_KEY  # the operator fixed it
        await h.sweep_until(lambda _: submitted_all(h, videos), wait_s=30)
        assert (await readiness(h)).status_code == 200
        assert await misconfigured_metric(h) == "0.0"
        assert [e for e in h.facts.published if e.type == "RunPodJobFailed"] == []
        assert set(jobs_per_video(h, videos).values()) == {1}
