"""The sweeper against real SeaweedFS and a jobs query API over HTTP: orphans go, live files
stay, missing files are reported; in-process and as `python -m openv_storage sweep`. (That the
running service sweeps periodically is checked in test_storage_service.py.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from openv_contracts import Envelope
from openv_contracts.facts import StorageObjectsDeleted
from openv_contracts.storage_keys import video_output_key, video_prefix
from openv_contracts.video import VideoStatus
from openv_infra.jobs_api import JobsApi
from openv_infra.settings import S3Settings
from openv_localstack.servers import SeaweedS3
from openv_storage.adapters.bucket import Bucket, make_client
from openv_storage.domain.retry import RetryPolicy
from openv_storage.entrypoints.periodic import sweep_periodically
from openv_storage.service_layer.sweeper import Sweeper, swept_event_id
from tests.integration.storage_support import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    FakeWeb,
    fake_web,
    new_video,
    object_keys,
    put_object,
    small_mp4,
    video_view,
)
from tests.integration.support import eventually

pytestmark = pytest.mark.integration

GRACE = timedelta(hours=1)
LATER = timedelta(hours=2)  # the sweeper's clock, so objects written now are past the grace


@pytest.fixture(scope="module")
def jobs() -> Iterator[FakeWeb]:
    yield from fake_web()


@pytest.fixture
def bucket_name(seaweed: SeaweedS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test: a sweep sees every object of its bucket."""
    name = f"sweep-{abs(hash(request.node.name)) % 10**10}"
    seaweed.ensure_bucket(name)
    return name


@dataclass
class World:
    """Objects in every situation the sweeper must tell apart, and what it must do."""

    keep: set[str]
    remove: set[str]
    deleted_video: UUID
    missing_video: UUID


def populate(seaweed: SeaweedS3, bucket: str, jobs: FakeWeb) -> World:
    client = seaweed.client()
    keep: set[str] = set()
    remove: set[str] = set()

    def store(key: str) -> str:
        put_object(client, bucket, key, small_mp4())
        return key

    # A completed video: its file and an extra object under its prefix stay.
    user, vid, key = new_video()
    jobs.videos[vid] = video_view(vid, user, VideoStatus.COMPLETED, object_key=key)
    keep |= {store(key), store(f"{video_prefix(user, vid)}poster.jpg")}
    # A video still rendering: stays.
    user, vid, key = new_video()
    jobs.videos[vid] = video_view(vid, user, VideoStatus.RUNNING)
    keep.add(store(key))
    # A failed video that left a file: the video is not deleted, the file stays with it.
    user, vid, key = new_video()
    jobs.videos[vid] = video_view(vid, user, VideoStatus.FAILED)
    keep.add(store(key))
    # A deleted video whose deletion never went through: removed (and then reported).
    user, deleted, key = new_video()
    jobs.videos[deleted] = video_view(deleted, user, VideoStatus.DELETED)
    remove |= {store(key), store(f"{video_prefix(user, deleted)}poster.jpg")}
    # A video the jobs service does not know: removed.
    user, vid, key = new_video()
    remove.add(store(key))
    # A known video's id under another user's prefix: no deletion would ever reach it.
    user, vid, key = new_video()
    jobs.videos[vid] = video_view(vid, user, VideoStatus.COMPLETED, object_key=key)
    keep.add(store(key))
    remove.add(store(video_output_key("someone-else", vid)))
    # Keys that do not follow the scheme are not the sweeper's to judge.
    keep |= {store("videos/README.txt"), store("exports/report.csv")}
    # A completed video whose file is gone: reported, nothing to remove.
    user, missing, key = new_video()
    jobs.videos[missing] = video_view(missing, user, VideoStatus.COMPLETED, object_key=key)
    return World(keep, remove, deleted, missing)


def make_bucket(seaweed: SeaweedS3, name: str) -> Bucket:
    settings = S3Settings(
        s3_endpoint=seaweed.endpoint,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
        s3_bucket=name,
    )
    return Bucket(make_client(settings, timeout_s=5.0), name)


@pytest.fixture
async def jobs_api(jobs: FakeWeb) -> AsyncIterator[JobsApi]:
    api = JobsApi(jobs.base, timeout_s=5.0)
    try:
        yield api
    finally:
        await api.aclose()
        jobs.videos.clear()
        jobs.jobs_down = False


def sweeper(
    bucket: Bucket, api: JobsApi, published: list[Envelope] | None, offset: timedelta
) -> Sweeper:
    async def publish(envelope: Envelope) -> None:
        assert published is not None
        published.append(envelope)

    return Sweeper(
        bucket,
        api,
        publish if published is not None else None,
        GRACE,
        RetryPolicy(3, 0.05, 0.1),
        clock=lambda: datetime.now(UTC) + offset,
    )


async def test_orphans_past_the_grace_period_are_removed_and_live_files_kept(
    seaweed: SeaweedS3, jobs: FakeWeb, jobs_api: JobsApi, bucket_name: str
) -> None:
    world = populate(seaweed, bucket_name, jobs)
    bucket = make_bucket(seaweed, bucket_name)
    published: list[Envelope] = []

    # Everything was written just now: within the grace period nothing goes.
    young = await sweeper(bucket, jobs_api, published, timedelta(0)).sweep()
    assert young.removed == 0
    assert object_keys(seaweed.client(), bucket_name) == world.keep | world.remove

    report = await sweeper(bucket, jobs_api, published, LATER).sweep()
    assert object_keys(seaweed.client(), bucket_name) == world.keep
    assert report.removed == len(world.remove) == 4
    assert (report.removed_deleted, report.removed_unknown) == (2, 2)
    assert report.unrecognised == 1  # videos/README.txt; exports/ is outside videos/
    assert report.missing == 1
    assert report.missing_videos == [world.missing_video]
    assert report.completed_checked == 3
    # The deleted video is purged now: reported so the jobs service marks its file deleted.
    assert report.reported == 1
    [fact] = published
    message = fact.message()
    assert isinstance(message, StorageObjectsDeleted)
    assert message.video_id == world.deleted_video
    assert message.objects_removed == 2
    assert fact.event_id == swept_event_id(world.deleted_video)

    # A second pass finds nothing more to do.
    again = await sweeper(bucket, jobs_api, [], LATER).sweep()
    assert (again.removed, again.missing, again.reported) == (0, 1, 0)
    assert object_keys(seaweed.client(), bucket_name) == world.keep


async def test_nothing_is_removed_while_video_states_cannot_be_read(
    seaweed: SeaweedS3, jobs: FakeWeb, jobs_api: JobsApi, bucket_name: str
) -> None:
    world = populate(seaweed, bucket_name, jobs)
    jobs.jobs_down = True
    report = await sweeper(make_bucket(seaweed, bucket_name), jobs_api, [], LATER).sweep()
    assert report.removed == 0
    assert report.skipped == len(world.keep | world.remove) - 2  # all but the unrecognised
    assert object_keys(seaweed.client(), bucket_name) == world.keep | world.remove


async def test_unknown_videos_are_held_back_when_they_dominate(
    seaweed: SeaweedS3, jobs: FakeWeb, jobs_api: JobsApi, bucket_name: str
) -> None:
    """As if the sweeper asked a jobs service that is not ours: keep, and say so."""
    client = seaweed.client()
    unknown = set()
    for _ in range(12):
        _, _, key = new_video()
        put_object(client, bucket_name, key, b"x")
        unknown.add(key)
    user, deleted, key = new_video()
    jobs.videos[deleted] = video_view(deleted, user, VideoStatus.DELETED)
    put_object(client, bucket_name, key, b"x")
    report = await sweeper(make_bucket(seaweed, bucket_name), jobs_api, [], LATER).sweep()
    assert (report.held_back, report.removed_unknown, report.removed_deleted) == (12, 0, 1)
    assert object_keys(client, bucket_name) == unknown


async def test_the_sweep_command_runs_one_sweep_and_prints_its_counts(
    seaweed: SeaweedS3, jobs: FakeWeb, jobs_api: JobsApi, bucket_name: str
) -> None:
    world = populate(seaweed, bucket_name, jobs)
    env = {
        **os.environ,
        "OPENV_S3_ENDPOINT": seaweed.endpoint,
        "OPENV_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "OPENV_S3_SECRET_KEY": S3_SECRET_KEY,
        "OPENV_S3_BUCKET": bucket_name,
        "OPENV_JOBS_URL": jobs.base,
        "OPENV_SWEEP_GRACE_S": "0",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "openv_storage", "sweep", "--no-report"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "removed=4 removed_deleted=2 removed_unknown=2" in result.stdout
    assert "missing=1" in result.stdout
    assert f"missing: {world.missing_video}" in result.stdout
    assert object_keys(seaweed.client(), bucket_name) == world.keep


async def test_sweep_periodically_survives_failed_sweeps() -> None:
    class Failing:
        calls = 0

        async def sweep(self) -> object:
            self.calls += 1
            raise RuntimeError("S3 is down (test)")

    failing = Failing()
    task = asyncio.create_task(sweep_periodically(failing, 0.01))
    try:
        await eventually(lambda: failing.calls >= 3 or task.done(), "three sweeps", 10)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
