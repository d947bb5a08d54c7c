"""The storage service's posters as they run: a `VideoCompleted` on the video-events topic, the
video's file in a real SeaweedFS, a JPEG stored beside it and `VideoPosterStored` on the
storage-events topic; a file PyAV cannot decode gets none; an S3 outage is waited out; the
deletion removes the poster with the prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from openv_contracts import topics
from openv_contracts.events import VideoCompleted, VideoDeleted
from openv_contracts.storage_keys import video_poster_key, video_prefix
from openv_contracts.video import VideoStatus
from openv_localstack.servers import SeaweedS3, TansuBroker
from openv_storage.main import Storage
from openv_storage.service_layer.posters import poster_event_id
from tests.integration.storage_support import (
    FakeWeb,
    TopicWatcher,
    fake_web,
    mp4_like,
    new_video,
    object_keys,
    produce,
    put_object,
    running_storage,
    small_mp4,
    storage_settings,
    video_view,
    watching_storage_facts,
    wrap,
)
from tests.integration.support import eventually

pytestmark = pytest.mark.integration

BUCKET = "openv-poster-tests"


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    yield from fake_web()


@pytest.fixture(scope="module")
async def watcher(kafka: TansuBroker) -> AsyncIterator[TopicWatcher]:
    async with watching_storage_facts(kafka) as watching:
        yield watching


@pytest.fixture(scope="module")
async def storage(
    kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> AsyncIterator[Storage]:
    settings = storage_settings(kafka, seaweed, web, BUCKET, sweep_interval_s=0)
    async with running_storage(settings) as running:
        yield running


def posted(video_id: UUID) -> Callable[[dict[str, Any]], bool]:
    return lambda v: v["type"] == "VideoPosterStored" and v["data"]["video_id"] == str(video_id)


async def complete(
    kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, content: bytes
) -> tuple[str, UUID, Any]:
    """A completed video whose file (`content`) is in the bucket, and its VideoCompleted sent."""
    user, vid, key = new_video()
    put_object(seaweed.client(), BUCKET, key, content)
    web.videos[vid] = video_view(vid, user, VideoStatus.COMPLETED, object_key=key)
    event = wrap(VideoCompleted(video_id=vid, object_key=key, size_bytes=len(content)), user)
    await produce(kafka.bootstrap, topics.VIDEO_EVENTS, event, str(vid))
    return user, vid, event


async def test_a_completed_video_gets_a_jpeg_poster_then_loses_it_with_its_prefix(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> None:
    user, vid, event = await complete(kafka, seaweed, web, small_mp4())
    fact = await watcher.wait_for(topics.STORAGE_EVENTS, posted(vid), 60)
    key = video_poster_key(user, vid)
    assert fact["event_id"] == str(poster_event_id(event))
    assert fact["data"] == {
        "video_id": str(vid),
        "object_key": key,
        "width": 64,
        "height": 64,
    }
    response = seaweed.client().get_object(BUCKET, key)
    try:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.read().startswith(b"\xff\xd8\xff")
    finally:
        response.close()
        response.release_conn()

    # Deleting the video removes the poster with everything else under its prefix.
    web.videos[vid] = video_view(vid, user, VideoStatus.DELETED)
    deleted = VideoDeleted(
        video_id=vid, previous_status=VideoStatus.COMPLETED, object_prefix=video_prefix(user, vid)
    )
    await produce(kafka.bootstrap, topics.VIDEO_EVENTS, wrap(deleted, user), str(vid))
    removed = await watcher.wait_for(
        topics.STORAGE_EVENTS,
        lambda v: v["type"] == "StorageObjectsDeleted" and v["data"]["video_id"] == str(vid),
        60,
    )
    assert removed["data"]["objects_removed"] == 2  # video.mp4 and poster.jpg
    assert object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)) == set()


async def test_a_file_pyav_cannot_decode_gets_no_poster_and_the_consumer_goes_on(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> None:
    skipped = storage.stats.posters_skipped
    user, bad, _ = await complete(kafka, seaweed, web, mp4_like(4096))
    _, good, _ = await complete(kafka, seaweed, web, small_mp4())
    await watcher.wait_for(topics.STORAGE_EVENTS, posted(good), 60)
    # The two videos' events are on their own partitions: either may be handled first.
    await eventually(lambda: storage.stats.posters_skipped == skipped + 1, "the skip", 30)
    assert not watcher.matching(topics.STORAGE_EVENTS, posted(bad))
    assert video_poster_key(user, bad) not in object_keys(seaweed.client(), BUCKET)
    assert not watcher.matching(topics.DEAD_LETTER, lambda v: str(bad) in v["value"])


async def test_a_poster_during_an_s3_outage_is_made_once_s3_is_back(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> None:
    user, vid, key = new_video()
    put_object(seaweed.client(), BUCKET, key, small_mp4())
    web.videos[vid] = video_view(vid, user, VideoStatus.COMPLETED, object_key=key)
    event = wrap(VideoCompleted(video_id=vid, object_key=key, size_bytes=9), user)
    await asyncio.to_thread(seaweed.stop)
    try:
        await produce(kafka.bootstrap, topics.VIDEO_EVENTS, event, str(vid))
        await asyncio.sleep(3)
        assert not watcher.matching(topics.STORAGE_EVENTS, posted(vid))
    finally:
        await asyncio.to_thread(seaweed.start)
    await watcher.wait_for(topics.STORAGE_EVENTS, posted(vid), 90)
    assert video_poster_key(user, vid) in object_keys(seaweed.client(), BUCKET)
    assert not watcher.matching(topics.DEAD_LETTER, lambda v: str(event.event_id) in v["value"])
