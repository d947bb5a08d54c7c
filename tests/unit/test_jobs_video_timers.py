"""The video timers' rules through VideoTimers and JobsService on the in-memory recorder: a
video queued too long, or in flight without news too long, is timed out and its slot and
quota given back; news meanwhile wins. (tests/integration/test_video_timers.py: Postgres.)"""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from openv_contracts import Envelope
from openv_contracts.commands import RequestVideo
from openv_contracts.facts import RunPodJobRunning, RunPodJobSubmitted
from openv_contracts.video import VideoParams, VideoStatus
from openv_jobs.adapters.memory_recorder import MemoryRecorder
from openv_jobs.domain.timers import SilentTooLong, silent_too_long_id
from openv_jobs.domain.usage import Limits
from openv_jobs.service_layer.jobs_service import JobsService
from openv_jobs.service_layer.video_timers import Candidate, VideoTimers
from tests.jobs_messages import Clock

LIMITS = Limits(max_active_jobs=2, quota_seconds=600.0)
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class StatesStuckVideos:
    """StuckVideos over the recorder's states (the `videos` projection, caught up)."""

    def __init__(self, recorder: MemoryRecorder) -> None:
        self.recorder = recorder

    def _since(self, statuses: set[VideoStatus], cutoff: datetime, limit: int) -> list[Candidate]:
        found = [
            (s.video_id, s.user_id, s.updated_at)
            for s in self.recorder.states().values()
            if s.status in statuses and s.updated_at < cutoff
        ]
        return sorted(found, key=lambda candidate: candidate[2])[:limit]

    async def queued_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        return self._since({VideoStatus.QUEUED}, cutoff, limit)

    async def silent_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        return self._since({VideoStatus.SUBMITTED, VideoStatus.RUNNING}, cutoff, limit)


async def _request(service: JobsService, user: str) -> UUID:
    video_id = uuid4()
    command = RequestVideo(video_id=video_id, prompt="a cat", params=VideoParams(seed=1))
    await service.handle(Envelope.wrap(command, user_id=user))
    return video_id


async def test_a_video_queued_too_long_is_timed_out_and_its_slot_and_quota_given_back() -> None:
    clock, recorder = Clock(AT), MemoryRecorder()
    service = JobsService(recorder, LIMITS, clock=clock)
    stuck, moving = await _request(service, "alice"), await _request(service, "alice")
    submitted = RunPodJobSubmitted(video_id=moving, runpod_job_id="job-1")
    await service.handle(Envelope.wrap(submitted, user_id="alice"))
    full = recorder.usages["alice"]
    assert full.active_jobs == 2
    timer = VideoTimers(
        StatesStuckVideos(recorder),
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
    states = recorder.states()
    assert states[stuck].status is VideoStatus.TIMED_OUT
    assert "not submitted to RunPod within 600 s" in (states[stuck].error_message or "")
    assert states[moving].status is VideoStatus.SUBMITTED
    usage = recorder.usages["alice"]
    assert usage.active_jobs == 1
    assert usage.used_seconds == pytest.approx(full.used_seconds - 31 / 24)
    assert await timer.sweep() == 0  # a second sweep (or instance) decides nothing new
    # The slot it held is free again.
    again = await _request(service, "alice")
    assert recorder.states()[again].status is VideoStatus.QUEUED


async def test_a_video_in_flight_without_news_too_long_is_timed_out_unless_news_came() -> None:
    clock, recorder = Clock(AT), MemoryRecorder()
    service = JobsService(recorder, LIMITS, clock=clock)
    lost, alive = await _request(service, "bob"), await _request(service, "bob")
    for video_id, job in ((lost, "job-lost"), (alive, "job-alive")):
        fact = RunPodJobSubmitted(video_id=video_id, runpod_job_id=job)
        await service.handle(Envelope.wrap(fact, user_id="bob"))
    timers = VideoTimers(
        StatesStuckVideos(recorder),
        service,
        queued_limit_s=600,
        silent_limit_s=3600,
        interval_s=60,
        clock=clock,
    )
    clock.now += timedelta(seconds=1800)
    running = RunPodJobRunning(video_id=alive, runpod_job_id="job-alive", progress=40)
    await service.handle(Envelope.wrap(running, user_id="bob"))
    # A timer message read before `alive`'s news arrived decides nothing: that silence ended.
    since = recorder.states()[alive].created_at
    stale = SilentTooLong(video_id=alive, silent_since=since, limit_s=3600)
    event_id = silent_too_long_id(alive, since)
    assert await service.handle(Envelope.wrap(stale, user_id="bob", event_id=event_id)) == []

    clock.now += timedelta(seconds=1801)  # `lost` silent 3601 s, `alive` 1801 s
    assert await timers.sweep() == 1
    states = recorder.states()
    assert states[lost].status is VideoStatus.TIMED_OUT
    assert "no news of the video's RunPod job" in (states[lost].error_message or "")
    assert states[alive].status is VideoStatus.RUNNING
    assert recorder.usages["bob"].active_jobs == 1

    clock.now += timedelta(seconds=1800)  # now `alive` has been silent too long as well
    assert await timers.sweep() == 1
    assert recorder.states()[alive].status is VideoStatus.TIMED_OUT
