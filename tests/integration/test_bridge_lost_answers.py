"""One GPU job per video: a `/run` whose answer is lost (a gateway's 502/504 after RunPod
created the job, or no answer in time) is not sent again until its job had
`ambiguous_run_wait_s` to report, and a job of that attempt that reports is adopted.

Against a real Postgres and the RunPod simulator (its `lose_run_answers` knob creates the job,
then loses the answer), through the bridge's real webhook route; see test_bridge_service for
the harness.
"""

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.domain.ambiguity import INPUT_KEY, attempt_marker
from openv_bridge.domain.submissions import SubmissionState
from openv_contracts import Envelope
from openv_runpod_sim.faults import ScenarioSpec
from openv_runpod_sim.jobs import Job
from tests.integration import test_bridge_uploads
from tests.integration.support import eventually
from tests.integration.test_bridge_service import (
    Harness,
    HarnessFactory,
    accepted,
    harness,
    post_webhook,
    vid,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket", "harness"]  # fixtures, shared with test_bridge_service and _uploads
#: A real bucket (SeaweedFS), where the bridge stores an inline video.
bucket = test_bridge_uploads.bucket

TERMINAL_FACTS = {"RunPodJobCompleted", "RunPodJobFailed", "RunPodJobTimedOut"}


def video_of(job: Job) -> str | None:
    marker = job.input.get(INPUT_KEY)
    return marker.get("video_id") if isinstance(marker, dict) else None


@pytest.mark.parametrize(
    ("lost_as", "settings"),
    [
        ("504", {}),
        ("502", {}),
        # No answer within the client's timeout for one call...
        ("timeout", {"runpod_timeout_s": 0.3}),
        # ...or cut short by the attempt's own timeout while the request was in flight.
        ("timeout", {"submit_timeout_s": 0.5, "submit_lease_s": 1.0}),
    ],
)
async def test_a_run_whose_answer_is_lost_is_not_sent_again_and_its_job_is_adopted(
    harness: HarnessFactory, lost_as: str, settings: dict[str, Any]
) -> None:
    async with harness(**settings) as h:
        h.sim.faults.lose_run_answers = 1
        h.sim.faults.lost_run_answer_as = lost_as  # type: ignore[assignment]
        h.sim.faults.lost_run_answer_hang_s = 2.0
        # The job takes a while, as real ones do: its webhook is the only news of it.
        h.runpod.next_knobs = [{"duration_s": 1.5}]
        env = accepted()
        await h.bridge.on_video_event(env)
        [job] = h.jobs()
        assert job.answer_lost

        # The reconciler and a redelivered acceptance leave it alone while its job may report.
        for _ in range(5):
            await h.reconciler.run_once()
            await h.bridge.on_video_event(env)
        assert h.sim.table.run_calls == 1
        row = await h.row(vid(env))
        assert (row.state, row.runpod_job_id) == (SubmissionState.SUBMITTING, None)
        assert row.answer_lost_at is not None

        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "adoption", 15)
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert {e.data["runpod_job_id"] for e in h.facts.of(vid(env))} == {job.id}
        assert h.sim.table.runs_accepted == 1
        assert h.sim.table.cancel_requests == []


async def test_a_lost_answers_job_with_a_webhook_over_the_limit_is_still_adopted(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    """A ComfyUI-style worker returns its video inline (base64 over the 1 MB webhook limit) for
    a job whose /run answer was lost: /status cannot stand in (its id is unknown), so the body
    is read after all and the job adopted by its echoed input; one GPU job."""
    async with harness(objects=bucket) as h:
        h.sim.faults.lose_run_answers = 1
        h.runpod.next_knobs = [
            {"duration_s": 1.0, "output_style": "comfy_base64", "output_min_bytes": 1_200_000}
        ]
        env = accepted()
        await h.bridge.on_video_event(env)
        [job] = h.jobs()
        assert job.answer_lost
        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "adoption", 20)
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert h.sim.table.runs_accepted == 1
        [completed] = h.facts.of(vid(env), "RunPodJobCompleted")
        assert completed.data["size_bytes"] >= 1_200_000


async def test_a_webhook_over_the_limit_before_the_run_answer_is_recorded_completes_the_video(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    """The job finishes and RunPod's webhook (an inline video over the 1 MB limit) and its
    retries all come while the /run answer is still on its way (in a batch, the jobs are
    recorded once the slowest /run returns): the body is read after all and the job adopted,
    instead of answering 503 until RunPod gives up and the video waits for a poll."""
    async with harness(objects=bucket) as h:
        h.sim.faults.hang_run_s = 2.0  # the job exists and runs; its id comes 2 s later
        h.runpod.next_knobs = [
            {"duration_s": 0.2, "output_style": "comfy_base64", "output_min_bytes": 1_200_000}
        ]
        env = accepted()
        submitting = asyncio.create_task(h.bridge.on_video_event(env))
        await eventually(lambda: h.jobs() and h.jobs()[0].webhook_log, "the webhook", 10)
        [job] = h.jobs()
        await eventually(
            lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "completion by webhook", 10
        )
        assert [record.http_status for record in job.webhook_log] == [200]
        await submitting
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert h.sim.table.runs_accepted == 1
        [completed] = h.facts.of(vid(env), "RunPodJobCompleted")
        assert completed.data["size_bytes"] >= 1_200_000


async def test_a_lost_answers_job_that_uploaded_unheard_completes_the_video_without_a_rerun(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    """The job of a lost answer finishes and uploads, but no webhook gets through (dropped):
    once the ambiguity bound passes, the bridge looks in the bucket before sending the video
    again, and the upload completes it; one GPU job."""
    async with harness(objects=bucket, ambiguous_run_wait_s=1.5) as h:
        h.sim.faults.lose_run_answers = 1
        h.runpod.next_knobs = [{"duration_s": 0.5, "drop_webhook": True}]
        env = accepted()
        await h.bridge.on_video_event(env)
        [job] = h.jobs()
        await eventually(lambda: job.status == "COMPLETED", "the job's completion")
        await h.sweep_until(lambda _: bool(h.facts.of(vid(env), "RunPodJobCompleted")))
        [completed] = h.facts.of(vid(env), "RunPodJobCompleted")
        assert completed.data["object_key"].endswith("/video.mp4")
        assert h.sim.table.runs_accepted == 1
        assert (await h.row(vid(env))).state is SubmissionState.FINISHED


async def test_a_failed_job_of_a_lost_answer_is_adopted_by_its_input_and_forgeries_are_not(
    harness: HarnessFactory,
) -> None:
    """RunPod's /status names neither `input` nor, for a failed job, the video's key: only the
    echoed `input` with the attempt's marker tells the job is this video's."""
    async with harness() as h:
        h.sim.faults.lose_run_answers = 1
        h.runpod.next_knobs = [{"fail": "CUDA out of memory", "webhook_delay_s": 1.0}]
        env = accepted()
        video_id = vid(env)
        await h.bridge.on_video_event(env)
        [job] = h.jobs()
        await eventually(lambda: job.status == "FAILED", "the job's failure")

        # The valid token, the real job id, but a marker the bridge never sent: not adopted.
        secret = h.settings.webhook_secret.get_secret_value().encode()
        for marker in (
            {**attempt_marker(secret, video_id, 1), "nonce": "0" * 32},
            attempt_marker(secret, video_id, 2),  # an attempt that has not happened
            attempt_marker(b"another-secret-of-32-bytes-long!", video_id, 1),
        ):
            forged = {"id": job.id, "status": "FAILED", "error": "x", "input": {INPUT_KEY: marker}}
            answer = await post_webhook(h, video_id, forged)
            assert answer.status_code == 409, (marker, answer.text)
        assert (await h.row(video_id)).runpod_job_id is None
        assert h.facts.published == []

        # The job's own webhook echoes its input: adopted, and its failure is the video's.
        await eventually(lambda: h.facts.of(video_id, "RunPodJobFailed"), "adoption", 15)
        assert h.facts.types(video_id) == ["RunPodJobSubmitted", "RunPodJobFailed"]
        [failed] = h.facts.of(video_id, "RunPodJobFailed")
        assert failed.data["runpod_job_id"] == job.id
        assert "out of memory" in failed.data["message"]
        assert h.sim.table.run_calls == 1


async def test_a_silent_job_is_replaced_only_after_the_bound_and_cancelled_if_it_reports(
    harness: HarnessFactory,
) -> None:
    async with harness(ambiguous_run_wait_s=1.5) as h:
        h.sim.faults.lose_run_answers = 1
        # The first job is still running when the bound is over; the second one is quick.
        h.runpod.next_knobs = [{"duration_s": 4.0}]
        env = accepted()
        await h.bridge.on_video_event(env)
        [first] = h.jobs()

        await h.sweep_until(lambda s: s.resubmitted == 1)
        second = next(j for j in h.jobs() if j.id != first.id)
        assert second.created_at - first.created_at >= 1.5  # not before the bound
        assert second.input[INPUT_KEY]["attempt"] == 2
        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "completion")

        # The first job ends later and reports: an extra job, cancelled on RunPod, no fact.
        await eventually(lambda: first.id in h.sim.table.cancel_requests, "the extra's cancel", 15)
        assert {e.data["runpod_job_id"] for e in h.facts.of(vid(env))} == {second.id}
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]


# --------------------------------------------------------------------------- measurement


async def _burst(h: Harness, videos: int, lost: int, job_s: float) -> dict[str, Any]:
    """`videos` videos in one consumer batch, the /run answers of `lost` of them lost after
    their job was created; every job takes `job_s`. Runs the reconciler until each video has
    its final fact; returns what RunPod ran."""
    envs: list[Envelope] = []
    for i in range(videos):
        marker = f"[burst-{i}]"
        spec = ScenarioSpec(prompt_contains=marker, sim={"duration_s": job_s})
        if i < lost:
            spec = spec.model_copy(update={"lose_run_answers": 1})
        h.sim.scenarios.add(spec)
        envs.append(accepted(prompt=f"a lighthouse {marker}", user=f"u{i}"))
    await h.bridge.submit_new(envs)

    def all_final() -> bool:
        return all(TERMINAL_FACTS & set(h.facts.types(vid(e))) for e in envs)

    deadline = time.monotonic() + 60
    while not all_final():
        assert time.monotonic() < deadline, "the burst did not finish"
        await h.reconciler.run_once()
    # Let the extra jobs (if any) end and report too.
    await eventually(
        lambda: all(j.status not in {"IN_QUEUE", "IN_PROGRESS"} for j in h.jobs()),
        "every job's end",
        30,
    )

    jobs_by_video: dict[str, list[Job]] = {}
    for job in h.jobs():
        jobs_by_video.setdefault(video_of(job) or "?", []).append(job)
    lost_videos = {str(vid(e)) for e in envs[:lost]}
    completions = Counter(
        video for video, jobs in jobs_by_video.items() for j in jobs if j.status == "COMPLETED"
    )
    return {
        "envs": envs,
        "jobs_by_video": jobs_by_video,
        "lost_videos": lost_videos,
        "jobs": len(h.jobs()),
        "cancelled_extra": len(set(h.sim.table.cancel_requests)),
        "max_completed_per_video": max(completions.values()),
        "completed_videos": sum(1 for e in envs if "RunPodJobCompleted" in h.facts.types(vid(e))),
    }


async def test_gpu_jobs_per_video_under_lost_answers(harness: HarnessFactory) -> None:
    """24 videos, the /run answers of 6 (25 %) lost after their job was created, each job
    running 3 s. With no wait (what the bridge did before: resubmit at once) every lost answer
    costs a second job; with a bound shorter than the job, the second job comes only after the
    bound; with a bound longer than the job, every video runs exactly one job."""
    videos, lost, job_s = 24, 6, 3.0
    figures = []
    # A worker for every job (extras included): none waits in RunPod's queue, so each case
    # takes about one job's time instead of four waves of the simulator's 8 workers.
    workers = {"max_workers": videos + lost}
    for wait_s in (0.0, 1.0, 30.0):
        async with harness(ambiguous_run_wait_s=wait_s, submit_concurrency=24, sim=workers) as h:
            seen = await _burst(h, videos, lost, job_s)
            assert h.sim.table.answers_lost == lost
            assert seen["completed_videos"] == videos  # every video ends completed
            extra = seen["jobs"] - videos
            figures.append(
                f"wait {wait_s:>4.0f} s: {seen['jobs']} jobs for {videos} videos "
                f"({seen['jobs'] / videos:.2f} per video), {extra} extra, "
                f"{seen['cancelled_extra']} cancelled as extra, "
                f"at most {seen['max_completed_per_video']} completed per video"
            )
            for video, jobs in seen["jobs_by_video"].items():
                if video not in seen["lost_videos"]:
                    assert len(jobs) == 1, video  # an answered /run is never doubled
                    continue
                first, *later = sorted(jobs, key=lambda j: j.created_at)
                for job in later:  # extra jobs only after the bound
                    assert job.created_at - first.created_at >= wait_s
            if wait_s > job_s:
                # The bound outlives the job: adopted, one job per video, none paid twice.
                assert seen["jobs"] == videos and seen["cancelled_extra"] == 0
                assert seen["max_completed_per_video"] == 1
            else:
                assert seen["jobs"] == videos + lost  # the price of a short bound
    print("\nGPU jobs per video under lost /run answers:\n" + "\n".join(figures))
