"""The storage service as it runs: its app (consumers, bucket bootstrap) against a real Tansu
broker and its own SeaweedFS (real signature checks), which these tests stop and restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID, uuid5

import pytest

from openv_contracts import Envelope, topics
from openv_contracts.events import VideoDeleted
from openv_contracts.facts import RunPodJobCompleted, RunPodJobOutputAtUrl
from openv_contracts.storage_keys import video_prefix
from openv_contracts.video import VideoStatus
from openv_localstack.servers import SeaweedS3, TansuBroker
from openv_storage.domain.retry import RetryPolicy
from openv_storage.main import Storage
from openv_storage.service_layer.imports import outcome_event_id
from tests.integration.storage_support import (
    FakeWeb,
    TopicWatcher,
    fake_web,
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

BUCKET = "openv-service-tests"  # does not exist until the service starts


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
    assert not seaweed.client().bucket_exists(BUCKET)
    settings = storage_settings(
        kafka,
        seaweed,
        web,
        BUCKET,
        import_allow_private_hosts=True,  # the file server is on loopback
        # Sweeps run all along; with an hour's grace they never touch these tests' objects.
        sweep_interval_s=1.0,
        sweep_grace_s=3600,
    )
    async with running_storage(settings) as running:
        yield running


def deleted_event(user: str, video_id: UUID) -> Envelope:
    return wrap(
        VideoDeleted(
            video_id=video_id,
            previous_status=VideoStatus.COMPLETED,
            object_prefix=video_prefix(user, video_id),
        ),
        user,
    )


def about(video_id: UUID, fact_type: str) -> Callable[[dict[str, Any]], bool]:
    return lambda v: v["type"] == fact_type and v["data"]["video_id"] == str(video_id)


def store_video(seaweed: SeaweedS3, user: str, video_id: UUID) -> set[str]:
    """A video's output plus a second object under its prefix."""
    prefix = video_prefix(user, video_id)
    keys = {f"{prefix}video.mp4", f"{prefix}poster.jpg"}
    for key in keys:
        put_object(seaweed.client(), BUCKET, key, small_mp4())
    return keys


async def test_the_bucket_is_created_on_start(storage: Storage, seaweed: SeaweedS3) -> None:
    assert seaweed.client().bucket_exists(BUCKET)
    assert await storage.bucket.exists()


async def test_the_service_sweeps_periodically(storage: Storage) -> None:
    sweeps = storage.stats.sweeps
    await eventually(lambda: storage.stats.sweeps >= sweeps + 2, "two more sweeps", 30)
    assert storage.stats.swept_objects == 0  # nothing here is past the grace period


async def test_a_deleted_videos_objects_are_removed_then_reported_once(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, watcher: TopicWatcher
) -> None:
    user, vid, _ = new_video()
    keys = store_video(seaweed, user, vid)
    _, live_vid, _ = new_video(user)  # the same user's other video stays
    live_keys = store_video(seaweed, user, live_vid)
    event = deleted_event(user, vid)

    await produce(kafka.bootstrap, topics.VIDEO_EVENTS, event, str(vid))
    fact = await watcher.wait_for(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"), 60)
    assert fact["data"]["objects_removed"] == len(keys)
    assert fact["event_id"] == str(uuid5(event.event_id, "purged"))
    assert fact["causation_id"] == str(event.event_id)
    assert object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)) == set()
    assert live_keys <= object_keys(seaweed.client(), BUCKET, video_prefix(user, live_vid))

    # Redelivered: already gone is success, reported under the same event id.
    await produce(kafka.bootstrap, topics.VIDEO_EVENTS, event, str(vid))
    await eventually(
        lambda: (
            len(watcher.matching(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"))) == 2
        ),
        "the redelivery's fact",
        60,
    )
    again = watcher.matching(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"))[1]
    assert again["event_id"] == fact["event_id"]
    assert again["data"]["objects_removed"] == 0


async def test_a_deletion_while_s3_is_down_completes_once_it_is_back(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, watcher: TopicWatcher
) -> None:
    user, vid, _ = new_video()
    keys = store_video(seaweed, user, vid)
    failures = storage.stats.deletion_failures
    await asyncio.to_thread(seaweed.stop)
    try:
        await produce(kafka.bootstrap, topics.VIDEO_EVENTS, deleted_event(user, vid), str(vid))
        await eventually(
            lambda: storage.stats.deletion_failures >= failures + 2, "failed attempts", 60
        )
        assert not watcher.matching(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"))
    finally:
        await asyncio.to_thread(seaweed.start)
    fact = await watcher.wait_for(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"), 60)
    assert fact["data"]["objects_removed"] == len(keys)
    assert object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)) == set()
    assert not watcher.matching(topics.DEAD_LETTER, lambda v: str(vid) in v["value"])


async def test_a_deletion_outlasting_its_budget_in_an_s3_outage_completes_once_s3_is_back(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, watcher: TopicWatcher
) -> None:
    """S3 gives no answer for longer than a deletion's retry budget: the deletion is not
    dead-lettered (the message is fine, S3 is not) but redelivered until S3 is back, and the
    video's files are removed then; reported once."""
    user, vid, _ = new_video()
    store_video(seaweed, user, vid)
    event = deleted_event(user, vid)
    policy = storage.deletions.policy
    storage.deletions.policy = RetryPolicy(attempts=3, base_s=0.1, max_s=0.2)
    failures = storage.stats.deletion_failures
    await asyncio.to_thread(seaweed.stop)
    try:
        await produce(kafka.bootstrap, topics.VIDEO_EVENTS, event, str(vid))
        # The budget was spent more than once: redelivered, never given up.
        await eventually(lambda: storage.stats.deletion_failures - failures >= 6, "retries", 60)
        assert not watcher.matching(topics.DEAD_LETTER, lambda v: str(event.event_id) in v["value"])
    finally:
        storage.deletions.policy = policy
        await asyncio.to_thread(seaweed.start)
    await watcher.wait_for(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"), 60)
    assert object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)) == set()
    assert len(watcher.matching(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"))) == 1
    assert not watcher.matching(topics.DEAD_LETTER, lambda v: str(event.event_id) in v["value"])


async def test_the_late_file_of_a_video_deleted_before_its_job_completed_is_removed(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> None:
    """The bridge (lagging: it was down) stores a job's output after the video's deletion was
    purged; the completion fact finds the video deleted and the file goes. A live video's
    completion leaves its file alone."""
    user, vid, key = new_video()
    web.videos[vid] = video_view(vid, user, VideoStatus.DELETED)
    late = store_video(seaweed, user, vid)
    live_user, live, live_key = new_video()
    web.videos[live] = video_view(live, live_user, VideoStatus.COMPLETED, object_key=live_key)
    kept = store_video(seaweed, live_user, live)
    for user_id, video_id, object_key in ((live_user, live, live_key), (user, vid, key)):
        fact = RunPodJobCompleted(
            video_id=video_id, runpod_job_id="job-1", object_key=object_key, size_bytes=9
        )
        # One partition (one key), in order: the live video's fact is handled first.
        await produce(kafka.bootstrap, topics.RUNPOD_EVENTS, wrap(fact, user_id), str(vid))
    assert late
    await eventually(
        lambda: not object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)), "removal", 60
    )
    assert object_keys(seaweed.client(), BUCKET, video_prefix(live_user, live)) == kept
    # The deletion was reported already (when it was purged first): no second fact.
    assert not watcher.matching(topics.STORAGE_EVENTS, about(vid, "StorageObjectsDeleted"))


async def test_a_result_at_a_url_is_imported_and_reported(
    storage: Storage, kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, watcher: TopicWatcher
) -> None:
    user, vid, key = new_video()
    web.videos[vid] = video_view(vid, user, VideoStatus.RUNNING)
    mp4 = small_mp4()
    fact = wrap(
        RunPodJobOutputAtUrl(
            video_id=vid, runpod_job_id="job-1", url=web.serve(f"{vid}.mp4", mp4), object_key=key
        ),
        user,
    )
    await produce(kafka.bootstrap, topics.RUNPOD_EVENTS, fact, str(vid))
    imported = await watcher.wait_for(
        topics.STORAGE_EVENTS, about(vid, "StorageObjectImported"), 60
    )
    assert imported["event_id"] == str(outcome_event_id(fact))
    assert imported["data"]["object_key"] == key
    assert imported["data"]["size_bytes"] == len(mp4)
    response = seaweed.client().get_object(BUCKET, key)
    try:
        assert response.read() == mp4
    finally:
        response.close()
        response.release_conn()

    # A result that is not a video: refused, reported as failed, nothing stored.
    user, vid, key = new_video()
    web.videos[vid] = video_view(vid, user, VideoStatus.RUNNING)
    page = web.serve(f"{vid}.html", b"<html>an error page</html>")
    fact = wrap(
        RunPodJobOutputAtUrl(video_id=vid, runpod_job_id="job-2", url=page, object_key=key), user
    )
    await produce(kafka.bootstrap, topics.RUNPOD_EVENTS, fact, str(vid))
    failed = await watcher.wait_for(topics.STORAGE_EVENTS, about(vid, "StorageImportFailed"), 60)
    assert "not an MP4" in failed["data"]["reason"]
    assert object_keys(seaweed.client(), BUCKET, video_prefix(user, vid)) == set()
