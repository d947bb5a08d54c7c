"""Cheap bytes (issue #23): a video's answer encoded once per state, the same bytes FastAPI's
`response_model` round trip made, and presigned URLs reused while most of their life is left."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

from fastapi.responses import JSONResponse
from minio import Minio

from openv_contracts.queries import VideoErrorView, VideoPage, VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_gateway.entrypoints.presenter import present
from openv_gateway.entrypoints.schemas import VideoList
from openv_gateway.entrypoints.video_json import VideoJson
from openv_infra.playback import Playback

SIGNER = Minio("s3.example", "key", "secret", region="us-east-1")  # presigns offline
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def view(
    version: int = 3, status: VideoStatus = VideoStatus.COMPLETED, **changes: object
) -> VideoView:
    base = VideoView(
        id=UUID("7d1f0c2a-1b2c-4d3e-8f90-0a1b2c3d4e5f"),
        user_id="alice",
        status=status,
        progress=100,
        prompt='a fox, ünïcödé and "quotes"',
        params=VideoParams(seed=1, cfg=6.5),
        duration_seconds=31 / 24,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=version),
        completed_at=T0,
        object_key="videos/alice/v/video.mp4",
        size_bytes=1234,
        poster_key="videos/alice/v/poster.jpg",
        version=version,
    )
    return base.model_copy(update=changes)


def fastapi_bytes(content: object) -> bytes:
    """What the routes answered before: the model's JSON dump through Starlette's encoder."""
    return bytes(JSONResponse(content).body)


def test_the_bytes_are_what_the_response_model_round_trip_answered() -> None:
    playback = Playback(SIGNER, "videos", 3600, clock=Clock())
    encoder = VideoJson(playback)
    failed = view(4, VideoStatus.FAILED, error=VideoErrorView(code="gpu", message="out of memory"))
    for one in (view(), view(2, VideoStatus.RUNNING, progress=40, completed_at=None), failed):
        assert encoder.encode(one) == fastapi_bytes(present(one, playback).model_dump(mode="json"))
    page = VideoPage(data=[view(), failed], next_cursor="abc")
    expected = VideoList(data=[present(v, playback) for v in page.data], next_cursor="abc")
    assert encoder.encode_page(page) == fastapi_bytes(expected.model_dump(mode="json"))
    empty = VideoPage(data=[], next_cursor=None)
    assert json.loads(encoder.encode_page(empty)) == {"data": [], "next_cursor": None}


def test_a_state_is_encoded_once_and_a_new_state_again() -> None:
    encoder = VideoJson(Playback(SIGNER, "videos", 3600, clock=Clock()))
    first = encoder.encode(view(3, VideoStatus.RUNNING, progress=10))
    assert encoder.encode(view(3, VideoStatus.RUNNING, progress=10)) is first  # the same bytes
    newer = encoder.encode(view(4, VideoStatus.RUNNING, progress=50))
    assert newer is not first and json.loads(newer)["progress"] == 50


def test_the_encoded_states_are_bounded() -> None:
    encoder = VideoJson(Playback(SIGNER, "videos", 3600, clock=Clock()), size=2)
    for _ in range(3):
        encoder.encode(view(id=uuid4(), status=VideoStatus.QUEUED))
    assert len(encoder._encoded) == 2


def test_a_presigned_url_is_reused_while_90_percent_of_its_life_is_left() -> None:
    clock = Clock()
    playback = Playback(SIGNER, "videos", 1000, clock=clock)
    url, expires_at = playback.url("videos/alice/v/video.mp4")
    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    # `expires_at` is the URL's own expiry (S3 counts from the signing time, in whole seconds).
    assert signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0])) == expires_at
    assert expires_at == T0.replace(microsecond=0) + timedelta(seconds=1000)
    clock.now = expires_at - timedelta(seconds=900)  # 90 % left: the same URL
    assert playback.url("videos/alice/v/video.mp4") == (url, expires_at)
    clock.now += timedelta(microseconds=1)  # less: a new one, valid for the whole lifetime
    renewed, renewed_expiry = playback.url("videos/alice/v/video.mp4")
    assert renewed != url
    assert renewed_expiry == clock.now.replace(microsecond=0) + timedelta(seconds=1000)


def test_a_completed_video_is_the_same_bytes_until_its_url_is_renewed() -> None:
    clock = Clock()
    encoder = VideoJson(Playback(SIGNER, "videos", 1000, clock=clock))
    first = encoder.encode(view())
    clock.now = T0 + timedelta(seconds=50)
    assert encoder.encode(view()) is first
    clock.now = T0 + timedelta(seconds=200)
    renewed = json.loads(encoder.encode(view()))
    assert renewed["video"]["url"] != json.loads(first)["video"]["url"]
    assert renewed["video"]["expires_at"] == "2026-01-02T03:24:05Z"


def test_remembered_urls_are_bounded() -> None:
    playback = Playback(SIGNER, "videos", 1000, clock=Clock(), size=2)
    for key in ("a", "b", "c"):
        playback.url(key)
    assert list(playback._signed) == ["b", "c"]
