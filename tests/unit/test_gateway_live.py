"""The live-status hub: one watch per video, re-read on feed hints, fallback re-reads."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_gateway.service_layer.live import LiveVideos, Watch


def view(video_id: UUID, version: int, status: VideoStatus = VideoStatus.QUEUED) -> VideoView:
    now = datetime.now(UTC)
    return VideoView(
        id=video_id,
        user_id="alice",
        status=status,
        progress=None,
        prompt="fox",
        params=VideoParams(seed=1),
        duration_seconds=31 / 24,
        created_at=now,
        updated_at=now,
        version=version,
    )


class FakeJobs:
    """The jobs service's read of one video: what it returns now, and how often it was asked."""

    def __init__(self) -> None:
        self.current: dict[UUID, VideoView] = {}
        self.reads = 0
        self.down = False

    async def video(self, video_id: UUID) -> VideoView | None:
        self.reads += 1
        if self.down:
            raise JobsUnavailable("down")
        return self.current.get(video_id)


async def test_a_hint_wakes_every_waiter_with_one_read() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    async with live.watch(vid) as first, live.watch(vid) as second:
        assert first is second and live.watched == 1
        waiters = [asyncio.create_task(w.wait_until(lambda v: True, 10.0)) for w in (first, second)]
        await asyncio.sleep(0.01)
        assert jobs.reads == 0  # nothing is read until something happens
        jobs.current[vid] = view(vid, 1)
        live.notify(vid, 1)
        results = await asyncio.wait_for(asyncio.gather(*waiters), 5.0)
        assert [r.version for r in results if r] == [1, 1]
        assert jobs.reads == 1
    assert live.watched == 0
    assert not live.is_watched(vid)


async def test_hints_for_known_versions_and_other_videos_read_nothing() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    async with live.watch(vid, known=view(vid, 3)) as watch:
        live.notify(vid, 2)
        live.notify(vid, 3)
        live.notify(uuid4(), 1)
        await asyncio.sleep(0.05)
        assert jobs.reads == 0
        assert watch.version == 3


async def test_the_fallback_re_read_finds_a_change_whose_message_was_missed() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=0.1)
    vid = uuid4()
    async with live.watch(vid, known=view(vid, 1)) as watch:
        jobs.current[vid] = view(vid, 2, VideoStatus.COMPLETED)  # no notify: message lost
        done = await watch.wait_until(lambda v: v.status is VideoStatus.COMPLETED, 5.0)
        assert done is not None and done.version == 2


async def test_waiting_ends_at_the_deadline_with_the_last_view() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=0.05)
    vid = uuid4()
    jobs.down = True  # re-reads fail: the waiter must still come back on time
    async with live.watch(vid, known=view(vid, 1)) as watch:
        loop = asyncio.get_running_loop()
        started = loop.time()
        last = await watch.wait_until(lambda v: v.status is VideoStatus.COMPLETED, 0.3)
        assert last is not None and last.version == 1
        assert 0.25 <= loop.time() - started < 2.0
        assert await watch.next_change(1, 0.1) is None


async def test_next_change_yields_only_newer_versions_and_never_goes_back() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    async with live.watch(vid, known=view(vid, 2)) as watch:
        current = await watch.next_change(0, 1.0)
        assert current is not None and current.version == 2
        pending = asyncio.create_task(watch.next_change(2, 5.0))
        watch.update(view(vid, 1))  # a stale read must not count as a change
        jobs.current[vid] = view(vid, 4, VideoStatus.RUNNING)
        live.notify(vid, None)  # version unknown: read anyway
        changed = await asyncio.wait_for(pending, 5.0)
        assert changed is not None and changed.version == 4
        assert watch.version == 4


async def test_close_stops_every_watch() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=0.01)
    vid = uuid4()
    async with live.watch(vid):
        await live.close()
        assert live.watched == 0
        reads = jobs.reads
        await asyncio.sleep(0.05)
        assert jobs.reads == reads  # the re-reading task is gone


async def test_leaving_a_watch_never_waits_for_a_re_read_that_ignores_cancellation() -> None:
    async def stubborn(video_id: UUID) -> VideoView | None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(30)  # like a shielded close inside an HTTP client
        return None

    live = LiveVideos(stubborn, fallback_s=0.01)
    vid = uuid4()

    async def use() -> Watch:
        async with live.watch(vid) as watch:
            await asyncio.sleep(0.1)  # the re-read is in flight
        return watch

    watch = await asyncio.wait_for(use(), 5.0)
    assert not live.is_watched(vid)
    task = watch.stop()
    assert task is not None
    task.cancel()  # the second cancellation ends it
    await asyncio.wait({task}, timeout=5.0)
    assert task.done()
    # The shared read itself is left to finish for whoever else waits; the test stops it.
    for load in list(live._loads.values()):
        assert load.task is not None
        for _ in range(2):
            load.task.cancel()
            await asyncio.sleep(0)


async def test_reads_are_served_from_recent_views_until_the_feed_reports_a_change() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    jobs.current[vid] = view(vid, 1)
    assert (await live.read(vid)) == view_at(jobs, vid)
    for _ in range(5):
        assert (await live.read(vid)).version == 1  # type: ignore[union-attr]
    assert jobs.reads == 1  # polling costs the jobs service nothing while nothing changes

    jobs.current[vid] = view(vid, 2, VideoStatus.SUBMITTED)
    live.notify(vid, 1)  # an event the view already contains: kept
    assert (await live.read(vid)).version == 1  # type: ignore[union-attr]
    live.notify(vid, 2)
    assert (await live.read(vid)).status is VideoStatus.SUBMITTED  # type: ignore[union-attr]
    assert jobs.reads == 2
    live.notify(vid, None)  # a version the feed could not tell: read again
    await live.read(vid)
    assert jobs.reads == 3


async def test_recent_views_expire_and_a_read_older_than_the_feed_is_not_kept() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=0.05)
    vid = uuid4()
    jobs.current[vid] = view(vid, 1)
    await live.read(vid)
    await asyncio.sleep(0.1)
    await live.read(vid)
    assert jobs.reads == 2  # older than the fallback interval: read again

    # The feed already reported version 3 while the jobs service still answers 2 (a replica
    # behind, say): that answer is returned but not served again.
    live.notify(vid, 3)
    jobs.current[vid] = view(vid, 2)
    assert (await live.read(vid)).version == 2  # type: ignore[union-attr]
    await live.read(vid)
    assert jobs.reads == 4


async def test_what_a_watch_learns_is_served_to_reads() -> None:
    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    async with live.watch(vid) as watch:
        jobs.current[vid] = view(vid, 4, VideoStatus.CANCELLED)
        live.notify(vid, 4)
        await watch.wait_until(lambda v: v.version == 4, 5.0)
    reads = jobs.reads
    assert (await live.read(vid)).status is VideoStatus.CANCELLED  # type: ignore[union-attr]
    assert jobs.reads == reads


def view_at(jobs: FakeJobs, video_id: UUID) -> VideoView:
    return jobs.current[video_id]


async def test_a_decision_the_feed_carries_whole_needs_no_read() -> None:
    from tests.unit.test_video_views import accepted, published

    jobs = FakeJobs()
    live = LiveVideos(jobs.video, fallback_s=30.0)
    vid = uuid4()
    decision = published(vid, accepted(vid), 1, datetime.now(UTC))
    async with live.watch(vid) as watch:
        waiter = asyncio.create_task(watch.wait_until(lambda v: True, 10.0))
        await asyncio.sleep(0.01)
        live.notify(vid, 1, decision)
        decided = await asyncio.wait_for(waiter, 5.0)
        assert decided is not None and (decided.version, decided.status) == (1, VideoStatus.QUEUED)
        await asyncio.sleep(0.05)  # the watch's loop had its chance to read: it must not
        assert jobs.reads == 0
        assert await live.read(vid) == decided  # kept for reads too
        jobs.current[vid] = view(vid, 3, VideoStatus.RUNNING)
        live.notify(vid, 3)  # a later event that cannot be folded (a gap): read
        changed = await asyncio.wait_for(watch.next_change(1, 10.0), 5.0)
        assert changed is not None and changed.version == 3
        assert jobs.reads == 1


def test_the_feed_hands_on_each_event_of_a_followed_video_and_drops_the_rest() -> None:
    from types import SimpleNamespace

    from openv_contracts import Envelope
    from openv_contracts.events import VideoAccepted, VideoSubmitted, video_stream_id
    from openv_gateway.entrypoints.video_feed import VideoFeed
    from openv_infra.settings import KafkaSettings

    vid, params = uuid4(), VideoParams(seed=2)
    accepted = VideoAccepted(
        video_id=vid,
        prompt="fox",
        params=params,
        duration_seconds=params.duration_seconds,
        charged_seconds=params.duration_seconds,
        object_prefix="videos/alice/x/",
    )

    def record(message: object, version: int) -> SimpleNamespace:
        envelope = Envelope.wrap(
            message,  # type: ignore[arg-type]
            user_id="alice",
            stream_id=video_stream_id(vid),
            stream_version=version,
        )
        return SimpleNamespace(key=str(vid).encode(), value=envelope.model_dump_json().encode())

    seen: list[tuple[UUID, int | None, Envelope | None]] = []
    feed = VideoFeed(KafkaSettings(), "test", lambda v: v == vid, lambda *a: seen.append(a))
    feed.handle(
        [
            record(accepted, 1),
            record(VideoSubmitted(video_id=vid, runpod_job_id="j"), 2),
            SimpleNamespace(key=str(vid).encode(), value=b'{"stream_version": 3}'),
            SimpleNamespace(key=str(vid).encode(), value=b"not json"),
            SimpleNamespace(key=str(uuid4()).encode(), value=b"{}"),  # nobody looks at it
        ]
    )
    [(v1, n1, decision), (v2, n2, submitted), (v3, n3, foreign), (v4, n4, unreadable)] = seen
    assert (v1, n1, v2, n2, v3, n3, foreign, v4, n4, unreadable) == (
        vid, 1, vid, 2, vid, 3, None, vid, None, None
    )  # fmt: skip
    assert decision is not None and decision.type == "VideoAccepted"
    assert submitted is not None and submitted.message() == VideoSubmitted(
        video_id=vid, runpod_job_id="j"
    )


def test_a_record_the_feed_cannot_use_is_skipped_and_the_rest_still_wake_waiters() -> None:
    from types import SimpleNamespace

    from openv_gateway.entrypoints.video_feed import VideoFeed
    from openv_infra.settings import KafkaSettings

    bad, good = uuid4(), uuid4()
    woken: list[UUID] = []

    def notify(video_id: UUID, version: int | None, envelope: object) -> None:
        if video_id == bad:
            raise RuntimeError("a release bug this record triggers")
        woken.append(video_id)

    feed = VideoFeed(KafkaSettings(), "test", lambda _: True, notify)
    value = b'{"stream_version": 3}'
    feed.handle(
        [
            SimpleNamespace(key=str(bad).encode(), value=value, topic="t", partition=0, offset=1),
            SimpleNamespace(key=str(good).encode(), value=value, topic="t", partition=0, offset=2),
        ]
    )
    assert woken == [good]
    assert feed.skipped == 1
