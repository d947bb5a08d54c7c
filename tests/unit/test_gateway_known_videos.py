"""The gateway's own view of the videos its clients look at: folded from the feed, read from
the jobs service only on a miss (once per video however many ask), never newer-then-older."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from openv_contracts.events import VideoCancelled, VideoRunning, VideoSubmitted
from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus
from openv_contracts.video_views import next_view
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.principal import Principal
from openv_gateway.service_layer.known_videos import KnownVideos
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import VideosService
from tests.unit.test_gateway_create import FastJobs
from tests.unit.test_gateway_live import FakeJobs
from tests.unit.test_video_views import accepted, published

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def history(vid: UUID) -> list[VideoView]:
    """The views the jobs service serves of one video: queued, submitted, running."""
    events = [
        accepted(vid),
        VideoSubmitted(video_id=vid, runpod_job_id="job-1"),
        VideoRunning(video_id=vid, progress=10),
    ]
    views: list[VideoView] = []
    current = None
    for version, event in enumerate(events, start=1):
        current = next_view(current, published(vid, event, version, T0))
        assert current is not None
        views.append(current)
    return views


def following(jobs: FakeJobs) -> LiveVideos:
    live = LiveVideos(jobs.video, fallback_s=0.01)
    live.feed_following()
    return live


async def test_polls_of_a_known_video_never_reach_the_jobs_service_while_the_feed_follows() -> None:
    jobs = FakeJobs()
    live = following(jobs)
    vid = uuid4()
    jobs.current[vid] = history(vid)[0]
    assert (await live.read(vid)) == jobs.current[vid]
    await asyncio.sleep(0.05)  # five times the fallback interval
    for _ in range(100):
        await live.read(vid)
    assert jobs.reads == 1

    # The feed folds the next event onto the view: still no read.
    live.notify(vid, 2, published(vid, VideoSubmitted(video_id=vid, runpod_job_id="job-1"), 2, T0))
    assert (await live.read(vid)) == history(vid)[1]
    assert jobs.reads == 1


async def test_without_the_feed_a_view_is_served_only_for_the_fallback_interval() -> None:
    jobs = FakeJobs()
    live = following(jobs)
    vid = uuid4()
    jobs.current[vid] = history(vid)[0]
    await live.read(vid)
    live.feed_lost()  # events may be missed from now on
    await asyncio.sleep(0.05)
    await live.read(vid)
    assert jobs.reads == 2


async def test_a_feed_that_follows_again_forgets_what_it_may_have_missed() -> None:
    jobs = FakeJobs()
    live = following(jobs)
    vid = uuid4()
    jobs.current[vid] = history(vid)[0]
    await live.read(vid)
    live.feed_lost()
    jobs.current[vid] = history(vid)[2]  # changed while the feed was away
    live.feed_following()
    assert (await live.read(vid)) == history(vid)[2]
    assert jobs.reads == 2


async def test_a_burst_of_reads_of_an_unknown_video_is_one_read_and_survives_leavers() -> None:
    jobs = FakeJobs()
    release = asyncio.Event()
    vid = uuid4()
    jobs.current[vid] = history(vid)[0]

    async def slow(video_id: UUID) -> VideoView | None:
        await release.wait()
        return await jobs.video(video_id)

    live = LiveVideos(slow, fallback_s=30.0)
    live.feed_following()
    readers = [asyncio.create_task(live.read(vid)) for _ in range(300)]
    await asyncio.sleep(0.01)
    readers[0].cancel()  # a client that went away does not cancel the others' read
    release.set()
    results = await asyncio.gather(*readers[1:])
    assert {r.version for r in results if r} == {1} and len(results) == 299
    assert jobs.reads == 1 and live.loads == 1


async def test_an_event_arriving_while_the_video_is_read_is_not_lost() -> None:
    """The jobs service answered version 1 while the feed already delivered version 2: the
    view kept is version 2, and it is what every read serves from then on."""
    vid = uuid4()
    views = history(vid)
    started = asyncio.Event()
    release = asyncio.Event()

    async def racing(video_id: UUID) -> VideoView | None:
        started.set()
        await release.wait()
        return views[0]

    live = LiveVideos(racing, fallback_s=30.0)
    live.feed_following()
    reader = asyncio.create_task(live.read(vid))
    await started.wait()
    live.notify(vid, 2, published(vid, VideoSubmitted(video_id=vid, runpod_job_id="job-1"), 2, T0))
    release.set()
    assert (await reader) == views[1]
    assert (await live.read(vid)) == views[1]


async def test_an_event_after_a_gap_is_read_from_the_jobs_service() -> None:
    jobs = FakeJobs()
    live = following(jobs)
    vid = uuid4()
    jobs.current[vid] = history(vid)[0]
    await live.read(vid)
    jobs.current[vid] = history(vid)[2]
    live.notify(vid, 3, published(vid, VideoRunning(video_id=vid, progress=10), 3, T0))
    assert (await live.read(vid)) == history(vid)[2]
    assert jobs.reads == 2


def test_the_kept_view_never_goes_back_and_the_oldest_is_evicted() -> None:
    vid, other, third = uuid4(), uuid4(), uuid4()
    known = KnownVideos(size=2, untrusted_ttl_s=1.0)
    known.trusted = True
    views = history(vid)
    assert known.put(views[1])
    assert not known.put(views[0])
    assert known.get(vid) == views[1]
    known.put(history(other)[0])
    known.get(vid)  # used: the other is now the least recently used
    known.put(history(third)[0])
    assert vid in known and third in known and other not in known


async def test_a_poll_right_after_a_cancel_never_answers_the_older_state() -> None:
    """Read-your-writes: the cancel answers the cancelled video, learnt from the feed; the
    jobs service (still answering the older state) is not asked, and no poll goes back."""

    class LaggingJobs(FastJobs):
        async def send(self, command: object, user_id: str) -> None:
            assert self.live is not None
            vid = next(iter(self.history))
            cancelled = VideoCancelled(video_id=vid, previous_status=VideoStatus.RUNNING)
            self.live.notify(vid, 4, published(vid, cancelled, 4, T0 + timedelta(seconds=1)))

    jobs = LaggingJobs()
    vid = uuid4()
    jobs.history[vid] = [v.model_copy(update={"user_id": "alice"}) for v in history(vid)]
    live = LiveVideos(jobs.video, fallback_s=0.01)
    live.feed_following()
    jobs.live = live
    service = VideosService(jobs, jobs, live, 5.0, PendingRequests(ttl_s=60.0))
    before = await service.get(Principal("alice"), vid)
    assert before.status is VideoStatus.RUNNING
    after = await service.cancel(Principal("alice"), vid)
    assert (after.status, after.version) == (VideoStatus.CANCELLED, 4)
    for _ in range(3):
        await asyncio.sleep(0.02)
        polled = await service.get(Principal("alice"), vid)
        assert (polled.status, polled.version) == (VideoStatus.CANCELLED, 4)


async def test_a_lost_last_event_is_noticed_within_the_trust_bound() -> None:
    """A broker restart may lose a record without the consumer failing: the view is read
    again once unchanged for the trust bound, by a poll and by a watch alike."""
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=0.01, trusted_ttl_s=0.1)
    live.feed_following()
    vid = uuid4()
    jobs.current[vid] = history(vid)[1]
    assert (await live.read(vid)) == history(vid)[1]
    jobs.current[vid] = history(vid)[2]  # its event never reaches the feed
    assert (await live.read(vid)) == history(vid)[1]  # within the bound: served as kept
    await asyncio.sleep(0.15)
    assert (await live.read(vid)) == history(vid)[2]
    other = uuid4()
    jobs.current[other] = history(other)[0]
    async with live.watch(other, known=history(other)[0]) as watch:
        jobs.current[other] = history(other)[2]
        changed = await watch.wait_until(lambda v: v.version == 3, 2.0)
        assert changed is not None and changed.version == 3
