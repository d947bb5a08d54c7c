"""Worker uploads against real servers: the bridge's service layer with Postgres, the RunPod
simulator (whose worker renders a real MP4 and PUTs it to `output_put_url`) and SeaweedFS.

- Each submission attempt's presigned URL writes a staging key under the video's prefix, never
  the played file; completion checks the upload (size cap, MP4 magic bytes), copies it to the
  video's key and removes the staging object.
- A job RunPod has forgotten (404 after its retention) while the bridge heard nothing: the
  bucket is looked at first, and an upload there completes the video.
"""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from openv_bridge.adapters.object_store import ObjectStore
from openv_contracts.storage_keys import video_output_key, video_uploads_prefix
from openv_contracts.video import ErrorCode
from openv_localstack.servers import SeaweedS3
from openv_runpod_sim.jobs import JobStatus
from tests.integration import test_bridge_service
from tests.integration.support import eventually
from tests.integration.test_bridge_service import Harness, HarnessFactory, accepted, vid

pytestmark = pytest.mark.integration

BUCKET = "bridge-uploads"
#: The bridge service harness (fixture) of test_bridge_service.
harness = test_bridge_service.harness


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> Iterator[ObjectStore]:
    seaweed.ensure_bucket(BUCKET)
    yield ObjectStore(seaweed.client(), seaweed.client(), BUCKET)


def _read(store: ObjectStore, key: str) -> bytes | None:
    from minio.error import S3Error

    try:
        response = store.client.get_object(store.bucket, key)
    except S3Error:
        return None
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


async def _submitted_job(h: Harness, knobs: dict[str, Any]) -> tuple[UUID, str]:
    h.runpod.next_knobs = [knobs]
    env = accepted()
    await h.bridge.on_video_event(env)
    [submitted] = h.facts.of(vid(env), "RunPodJobSubmitted")
    return vid(env), submitted.data["runpod_job_id"]


async def _final_fact(h: Harness, video_id: UUID) -> Any:
    def final() -> Any:
        done = [
            e
            for e in h.facts.of(video_id)
            if e.type in {"RunPodJobCompleted", "RunPodJobFailed", "RunPodJobTimedOut"}
        ]
        return done[0] if done else None

    return await eventually(final, "the job's final fact", 30)


async def test_the_upload_url_writes_a_staging_key_that_is_checked_copied_and_removed(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    async with harness(objects=bucket) as h:
        video_id, job_id = await _submitted_job(h, {"duration_s": 0.3})
        job = h.job(job_id)
        final_key = video_output_key("u1", video_id)
        staging = video_uploads_prefix("u1", video_id)
        put_url = job.input["output_put_url"]
        assert f"/{BUCKET}/{staging}" in httpx.URL(put_url).path
        assert job.input["output_key"] == final_key  # names the video, never written by the URL

        completed = await _final_fact(h, video_id)
        assert completed.type == "RunPodJobCompleted"
        played = _read(bucket, final_key)
        assert played is not None and played[4:8] == b"ftyp"
        assert completed.data == {
            **completed.data,
            "object_key": final_key,
            "size_bytes": len(played),
        }
        assert await bucket.keys(staging) == []  # the staging object was removed after the copy

        # The URL still works (it lives ttl + executionTimeout), but only writes a staging key
        # nobody reads any more: the played file stays what the check accepted.
        async with httpx.AsyncClient() as client:
            answer = await client.put(put_url, content=b"\0\0\0\x20ftypisom" + b"x" * 100)
        assert answer.status_code == 200
        assert _read(bucket, final_key) == played
        # A webhook repeated after completion changes nothing either (the record is settled).
        assert (await h.row(video_id)).state.value == "finished"


@pytest.mark.parametrize(
    ("body", "max_bytes", "problem"),
    [
        (b"<html>not a video</html>" * 10, 1024, "not an MP4"),
        (b"\0\0\0\x20ftypisom" + b"\0" * 2000, 1024, "more than the 1024 accepted"),
        (b"", 1024, "empty"),
    ],
)
async def test_a_bad_upload_fails_the_video_as_invalid_output(
    harness: HarnessFactory, bucket: ObjectStore, body: bytes, max_bytes: int, problem: str
) -> None:
    async with harness(objects=bucket, upload_max_bytes=max_bytes) as h:
        # The worker reports success but stores nothing itself; what it "uploaded" is `body`.
        video_id, job_id = await _submitted_job(h, {"upload_fail": True, "duration_s": 1.0})
        async with httpx.AsyncClient() as client:
            answer = await client.put(h.job(job_id).input["output_put_url"], content=body)
        assert answer.status_code == 200

        failed = await _final_fact(h, video_id)
        assert failed.type == "RunPodJobFailed"
        assert failed.data["code"] == ErrorCode.INVALID_OUTPUT.value
        assert problem in failed.data["message"]
        assert _read(bucket, video_output_key("u1", video_id)) is None
        assert await bucket.keys(video_uploads_prefix("u1", video_id)) == []


async def _gone_after_completing(h: Harness, knobs: dict[str, Any]) -> tuple[UUID, str]:
    """A job that completes while no webhook reaches the bridge, then is forgotten by RunPod."""
    video_id, job_id = await _submitted_job(
        h, {"drop_webhook": True, "retention_s": 0.2, "duration_s": 0.2, **knobs}
    )
    job = h.job(job_id)
    await eventually(lambda: job.status is JobStatus.COMPLETED, "the job to complete", 30)
    async with httpx.AsyncClient(base_url=h.settings.runpod_base_url) as client:
        auth = {"Authorization": f"Bearer {h.settings.runpod_api_key.get_secret_value()}"}

        async def forgotten() -> bool:
            status = await client.get(
                f"/{h.settings.runpod_endpoint_id}/status/{job_id}", headers=auth
            )
            return status.status_code == 404

        await eventually(forgotten, "RunPod to forget the job", 10)
    assert h.facts.of(video_id, "RunPodJobCompleted") == []
    return video_id, job_id


async def test_a_job_runpod_forgot_after_its_upload_completes_the_video(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    # The reconciler only runs when the test says: the bridge is "down" until then.
    async with harness(objects=bucket, reconcile_quiet_s=0.05) as h:
        video_id, job_id = await _gone_after_completing(h, {})

        await h.sweep_until(lambda sweep: sweep.polled > 0)
        completed = await _final_fact(h, video_id)
        assert completed.type == "RunPodJobCompleted", completed.data
        assert completed.data["runpod_job_id"] == job_id
        played = _read(bucket, video_output_key("u1", video_id))
        assert played is not None and played[4:8] == b"ftyp"
        assert completed.data["size_bytes"] == len(played)
        assert h.facts.of(video_id, "RunPodJobTimedOut") == []
        assert (await h.row(video_id)).state.value == "finished"


async def test_a_job_runpod_forgot_without_an_upload_still_times_out(
    harness: HarnessFactory, bucket: ObjectStore
) -> None:
    async with harness(objects=bucket, reconcile_quiet_s=0.05) as h:
        video_id, _ = await _gone_after_completing(h, {"upload_fail": True})

        await h.sweep_until(lambda sweep: sweep.polled > 0)
        timed_out = await _final_fact(h, video_id)
        assert timed_out.type == "RunPodJobTimedOut"
        assert _read(bucket, video_output_key("u1", video_id)) is None


def test_a_job_that_uploads_long_after_it_was_submitted_still_can(
    bucket: ObjectStore,
) -> None:
    """RunPod may start a job as late as its ttl allows and run it for its execution timeout:
    the URL handed over at submission must still take the upload then. With the old expiry
    (7200 s) a job that started uploading 2 h after submission lost its paid render."""
    from datetime import UTC, datetime, timedelta

    from openv_bridge.config import Settings

    settings = Settings()
    mp4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64
    key = f"{video_uploads_prefix('late-user', UUID(int=7))}1-late.mp4"
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(seconds=7200 + 60)
    old = bucket.upload_url(key, 7200, signed_at=two_hours_ago)
    assert httpx.put(old, content=mp4).status_code == 403  # what happened before
    for started_s in (7200 + 60, settings.runpod_ttl_s + settings.runpod_execution_timeout_s):
        url = bucket.upload_url(
            key, settings.upload_url_expiry_s, signed_at=now - timedelta(seconds=started_s)
        )
        assert httpx.put(url, content=mp4).status_code == 200, started_s
    assert _read(bucket, key) == mp4
