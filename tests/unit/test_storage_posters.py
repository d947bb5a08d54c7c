"""Posters without servers: the PyAV extraction on a tiny real MP4 and on files it cannot
decode, and the poster use case on a fake bucket (stored, reported once per event id, never
for an undecodable or too large file, discarded when the video was deleted meanwhile, S3
errors retried)."""

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from openv_contracts import Envelope
from openv_contracts.events import VideoCompleted
from openv_contracts.facts import VideoPosterStored
from openv_contracts.storage_keys import video_output_key, video_poster_key
from openv_contracts.video import VideoStatus
from openv_runpod_sim.render import RenderSpec, render_mp4
from openv_storage.adapters.bucket import ObjectTooLarge, S3Unreachable
from openv_storage.adapters.poster_frames import extract_poster
from openv_storage.domain.retry import RetryPolicy
from openv_storage.service_layer.posters import PosterService
from openv_storage.service_layer.retrying import RetriesExhausted
from tests.unit.test_storage_handling import NoVideos

JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return render_mp4(RenderSpec(width=160, height=96, num_frames=31, seed=7))


def test_a_poster_is_a_jpeg_of_the_videos_size(mp4: bytes, tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(mp4)
    still = extract_poster(path)
    assert still is not None
    assert still.data.startswith(JPEG_MAGIC) and still.data.endswith(b"\xff\xd9")
    assert (still.width, still.height, still.content_type) == (160, 96, "image/jpeg")


def test_a_video_shorter_than_the_posters_time_gets_its_last_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.mp4"
    path.write_bytes(render_mp4(RenderSpec(width=64, height=64, num_frames=7, seed=1)))
    still = extract_poster(path, at_s=10.0)
    assert still is not None and still.data.startswith(JPEG_MAGIC)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is not a video" * 40,
        b"\x00\x00\x00\x18ftypisom" + b"\x00" * 500,  # looks like an MP4, holds nothing
        b"",
    ],
)
def test_a_file_pyav_cannot_decode_gets_no_poster(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    assert extract_poster(path) is None


def test_the_mp4_cut_short_gets_no_poster_or_one_from_what_is_there(
    mp4: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(mp4[: len(mp4) // 3])
    still = extract_poster(path)  # never raises
    assert still is None or still.data.startswith(JPEG_MAGIC)


class FakeBucket:
    """Objects in a dict; `failures` S3 outages before each kind of call succeeds."""

    def __init__(self, objects: dict[str, bytes], failures: int = 0) -> None:
        self.objects = objects
        self.failures = failures
        self.puts: list[str] = []

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise S3Unreachable("connection refused")

    async def download(self, key: str, path: Path, max_bytes: int) -> int | None:
        self._maybe_fail()
        data = self.objects.get(key)
        if data is None:
            return None
        if len(data) > max_bytes:
            raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
        await asyncio.to_thread(path.write_bytes, data)
        return len(data)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._maybe_fail()
        self.puts.append(key)
        self.objects[key] = data

    async def remove(self, keys: list[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


async def no_sleep(seconds: float) -> None:
    pass


def completed(video_id: UUID) -> Envelope:
    event = VideoCompleted(
        video_id=video_id, object_key=video_output_key("alice", video_id), size_bytes=9
    )
    return Envelope.wrap(event, user_id="alice")


def service(
    bucket: FakeBucket, videos: NoVideos, max_bytes: int = 10**6
) -> tuple[PosterService, list[Envelope]]:
    published: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        published.append(envelope)

    policy = RetryPolicy(attempts=3, base_s=0.0, max_s=0.0)
    posters = PosterService(
        bucket, extract_poster, videos, publish, policy, max_bytes, sleep=no_sleep
    )
    return posters, published


async def test_a_completed_video_gets_its_poster_stored_and_reported_once(mp4: bytes) -> None:
    video_id = uuid4()
    bucket = FakeBucket({video_output_key("alice", video_id): mp4})
    posters, published = service(bucket, NoVideos({video_id: VideoStatus.COMPLETED}))
    event = completed(video_id)
    await posters.on_video_event(event)
    key = video_poster_key("alice", video_id)
    assert key == f"videos/alice/{video_id}/poster.jpg"
    assert bucket.objects[key].startswith(JPEG_MAGIC)
    [fact] = published
    message = fact.message()
    assert message == VideoPosterStored(video_id=video_id, object_key=key, width=160, height=96)
    # A redelivery extracts again and reports the same fact (same id): jobs records it once.
    await posters.on_video_event(event)
    assert published[1].event_id == fact.event_id
    assert posters.stats.posters == 2


async def test_an_undecodable_or_too_large_file_gets_no_poster_and_no_fact(mp4: bytes) -> None:
    garbage, large = uuid4(), uuid4()
    bucket = FakeBucket(
        {
            video_output_key("alice", garbage): b"\x00\x00\x00\x18ftypisom" + b"\x01" * 100,
            video_output_key("alice", large): mp4,
        }
    )
    videos = NoVideos({garbage: VideoStatus.COMPLETED, large: VideoStatus.COMPLETED})
    posters, published = service(bucket, videos, max_bytes=len(mp4) - 1)
    await posters.on_video_event(completed(garbage))
    await posters.on_video_event(completed(large))
    gone = uuid4()  # its file was removed meanwhile (deleted)
    await posters.on_video_event(completed(gone))
    assert published == [] and bucket.puts == []
    assert posters.stats.posters_skipped == 3


async def test_a_video_deleted_during_the_extraction_keeps_no_poster(mp4: bytes) -> None:
    video_id = uuid4()
    bucket = FakeBucket({video_output_key("alice", video_id): mp4})
    posters, published = service(bucket, NoVideos({video_id: VideoStatus.DELETED}))
    await posters.on_video_event(completed(video_id))
    assert bucket.puts == [video_poster_key("alice", video_id)]  # written, then removed
    assert video_poster_key("alice", video_id) not in bucket.objects
    assert published == []


async def test_s3_errors_are_retried_and_an_outage_outlasting_the_budget_is_raised(
    mp4: bytes,
) -> None:
    video_id = uuid4()
    videos = NoVideos({video_id: VideoStatus.COMPLETED})
    bucket = FakeBucket({video_output_key("alice", video_id): mp4}, failures=2)
    posters, published = service(bucket, videos)
    await posters.on_video_event(completed(video_id))
    assert [e.type for e in published] == ["VideoPosterStored"]
    down = FakeBucket({video_output_key("alice", video_id): mp4}, failures=99)
    posters, published = service(down, videos)
    with pytest.raises(RetriesExhausted) as raised:
        await posters.on_video_event(completed(video_id))
    # The consumer turns this into a redelivery (S3 gave no answer), never a dead letter.
    assert isinstance(raised.value.__cause__, S3Unreachable)
    assert published == []


async def test_the_extraction_runs_off_the_event_loop(mp4: bytes) -> None:
    video_id = uuid4()
    bucket = FakeBucket({video_output_key("alice", video_id): mp4})
    loop_thread: list[bool] = []

    def extract(path: Path) -> None:
        try:
            asyncio.get_running_loop()
            loop_thread.append(True)
        except RuntimeError:
            loop_thread.append(False)

    published: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        published.append(envelope)

    posters = PosterService(
        bucket, extract, NoVideos({video_id: VideoStatus.COMPLETED}), publish, RetryPolicy(), 10**6
    )
    await posters.on_video_event(completed(video_id))
    assert loop_thread == [False] and published == []
