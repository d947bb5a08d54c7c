"""A video that stays `queued` (its request never became a RunPod job), or stays in flight with
no news of its job for longer than RunPod keeps one, is timed out by the jobs service, and its
concurrency slot and quota are given back: over a real Postgres."""

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts import Envelope
from openv_contracts.commands import RequestVideo
from openv_contracts.facts import RunPodJobRunning, RunPodJobSubmitted
from openv_contracts.video import VideoParams, VideoStatus
from openv_jobs.adapters.postgres_recorder import PostgresRecorder
from openv_jobs.adapters.projector import Projector
from openv_jobs.adapters.queries import Queries
from openv_jobs.adapters.stuck_videos import PostgresStuckVideos
from openv_jobs.domain.timers import SilentTooLong, silent_too_long_id
from openv_jobs.domain.usage import Limits
from openv_jobs.service_layer.jobs_service import JobsService
from openv_jobs.service_layer.video_timers import VideoTimers
from tests.jobs_messages import Clock

pytestmark = pytest.mark.integration

LIMITS = Limits(max_active_jobs=2, quota_seconds=600.0)


@pytest.fixture
async def service(jobs_engine: AsyncEngine) -> AsyncIterator[JobsService]:
    made = JobsService(PostgresRecorder(jobs_engine), LIMITS, clock=Clock())
    yield made
    await made.close()


async def _request(service: JobsService, user: str) -> UUID:
    video_id = uuid4()
    command = RequestVideo(video_id=video_id, prompt="a cat", params=VideoParams(seed=1))
    await service.handle(Envelope.wrap(command, user_id=user))
    return video_id


async def test_a_video_queued_too_long_is_timed_out_and_its_slot_and_quota_given_back(
    jobs_engine: AsyncEngine, jobs_dsn: str, service: JobsService
) -> None:
    clock = Clock()
    service.clock = clock
    stuck, moving = await _request(service, "alice"), await _request(service, "alice")
    # The bridge took `moving` to RunPod; `stuck` never got there.
    submitted = RunPodJobSubmitted(video_id=moving, runpod_job_id="job-1")
    await service.handle(Envelope.wrap(submitted, user_id="alice"))
    queries = Queries(jobs_engine, LIMITS)
    full = await queries.usage("alice", clock.now)
    assert full.active_jobs == 2
    await Projector(jobs_dsn).catch_up()

    timer = VideoTimers(
        PostgresStuckVideos(jobs_engine),
        service,
        queued_limit_s=600,
        silent_limit_s=10**6,
        interval_s=60,
        clock=clock,
    )
    clock.now += timedelta(seconds=599)
    assert await timer.sweep() == 0  # not yet

    clock.now += timedelta(seconds=2)
    assert await timer.sweep() == 1
    video = await queries.video(stuck)
    assert video is not None and video.status is VideoStatus.TIMED_OUT
    assert video.error is not None and "not submitted to RunPod within 600 s" in video.error.message
    other = await queries.video(moving)
    assert other is not None and other.status is VideoStatus.SUBMITTED
    usage = await queries.usage("alice", clock.now)
    assert usage.active_jobs == 1
    assert usage.used_seconds == pytest.approx(full.used_seconds - 31 / 24, abs=0.002)

    # The projection still says `queued` until the projector runs: a second sweep (or
    # another instance's) decides nothing new for it.
    assert await timer.sweep() == 0
    await Projector(jobs_dsn).catch_up()
    assert await timer.sweep() == 0
    # The slot it held is free again.
    again = await queries.video(await _request(service, "alice"))
    assert again is not None and again.status is VideoStatus.QUEUED


async def test_a_video_in_flight_without_news_too_long_is_timed_out_unless_news_came(
    jobs_engine: AsyncEngine, jobs_dsn: str, service: JobsService
) -> None:
    """The outcome of a video's job was lost (its fact dead-lettered): after the silence limit
    it is timed out and its slot given back; a video with news meanwhile is left alone."""
    clock = Clock()
    service.clock = clock
    lost, alive = await _request(service, "bob"), await _request(service, "bob")
    for video_id, job in ((lost, "job-lost"), (alive, "job-alive")):
        fact = RunPodJobSubmitted(video_id=video_id, runpod_job_id=job)
        await service.handle(Envelope.wrap(fact, user_id="bob"))
    timers = VideoTimers(
        PostgresStuckVideos(jobs_engine),
        service,
        queued_limit_s=600,
        silent_limit_s=3600,
        interval_s=60,
        clock=clock,
    )
    clock.now += timedelta(seconds=1800)
    running = RunPodJobRunning(video_id=alive, runpod_job_id="job-alive", progress=40)
    await service.handle(Envelope.wrap(running, user_id="bob"))
    await Projector(jobs_dsn).catch_up()
    queries = Queries(jobs_engine, LIMITS)
    view = await queries.video(alive)
    assert view is not None
    # A timer message read before `alive`'s news arrived decides nothing: that silence ended.
    stale = SilentTooLong(video_id=alive, silent_since=view.created_at, limit_s=3600)
    assert (
        await service.handle_batch(
            [
                Envelope.wrap(
                    stale, user_id="bob", event_id=silent_too_long_id(alive, view.created_at)
                )
            ]
        )
        == []
    )

    clock.now += timedelta(seconds=1801)  # `lost` silent 3601 s, `alive` 1801 s
    assert await timers.sweep() == 1
    timed_out = await queries.video(lost)
    assert timed_out is not None and timed_out.status is VideoStatus.TIMED_OUT
    assert timed_out.error is not None and "no news of the video's RunPod job" in (
        timed_out.error.message
    )
    still = await queries.video(alive)
    assert still is not None and still.status is VideoStatus.RUNNING
    assert (await queries.usage("bob", clock.now)).active_jobs == 1

    clock.now += timedelta(seconds=1800)  # now `alive` has been silent too long as well
    await Projector(jobs_dsn).catch_up()
    assert await timers.sweep() == 1
    ended = await queries.video(alive)
    assert ended is not None and ended.status is VideoStatus.TIMED_OUT
