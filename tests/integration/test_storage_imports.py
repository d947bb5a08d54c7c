"""Importing results left at URLs: real HTTP servers, real SeaweedFS (signatures checked), the
storage service's ImportService with its SSRF guard; the outcome facts are captured."""

from __future__ import annotations

import hashlib
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from openv_contracts import Envelope
from openv_contracts.facts import (
    RunPodJobOutputAtUrl,
    StorageImportFailed,
    StorageObjectImported,
)
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import VideoStatus
from openv_infra.addresses import AddressPolicy, IPAddress
from openv_infra.guarded_network import Resolver, system_resolver
from openv_infra.settings import S3Settings
from openv_localstack.ports import free_port
from openv_localstack.servers import SeaweedS3
from openv_storage.adapters.bucket import Bucket, make_client
from openv_storage.adapters.source import UrlSource
from openv_storage.domain.retry import RetryPolicy
from openv_storage.service_layer.imports import ImportLimits, ImportService, outcome_event_id
from tests.integration.storage_support import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    FakeWeb,
    fake_web,
    mp4_like,
    new_video,
    object_keys,
    small_mp4,
    video_view,
    wrap,
)

pytestmark = pytest.mark.integration

BUCKET = "openv-import-tests"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
async def bucket(seaweed: SeaweedS3) -> Bucket:
    settings = S3Settings(
        s3_endpoint=seaweed.endpoint,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
        s3_bucket=BUCKET,
    )
    b = Bucket(make_client(settings, timeout_s=5.0), BUCKET)
    assert await b.ensure() is True  # created
    assert await b.ensure() is False  # exists
    return b


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    yield from fake_web("127.0.0.1")


@pytest.fixture(scope="module")
def web2() -> Iterator[FakeWeb]:
    """A second file host on another loopback address, for redirects and pinning."""
    yield from fake_web("127.0.0.2")


class FakeStates:
    """The jobs service's view of videos; a list of views is answered one per call."""

    def __init__(self) -> None:
        self.views: dict[uuid.UUID, list[VideoView | None]] = {}
        self.down = False
        self.calls = 0

    def set(self, video_id: uuid.UUID, *views: VideoView | None) -> None:
        self.views[video_id] = list(views)

    async def video(self, video_id: uuid.UUID) -> VideoView | None:
        self.calls += 1
        if self.down:
            raise JobsUnavailable("jobs is down (test)")
        answers = self.views.get(video_id, [None])
        return answers.pop(0) if len(answers) > 1 else answers[0]


class Harness:
    def __init__(self, bucket: Bucket, states: FakeStates, service: ImportService) -> None:
        self.bucket = bucket
        self.states = states
        self.service = service
        self.published: list[Envelope] = []

    async def run(self, url: str, user: str, video_id: uuid.UUID, key: str) -> Envelope:
        fact = RunPodJobOutputAtUrl(
            video_id=video_id, runpod_job_id="job-1", url=url, object_key=key
        )
        return await self.deliver(wrap(fact, user))

    async def deliver(self, envelope: Envelope) -> Envelope:
        before = len(self.published)
        await self.service.on_runpod_event(envelope)
        assert len(self.published) == before + 1, "exactly one outcome per delivery"
        outcome = self.published[-1]
        assert outcome.event_id == outcome_event_id(envelope)
        assert outcome.causation_id == envelope.event_id
        return outcome


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def harness(bucket: Bucket) -> AsyncIterator[MakeHarness]:
    sources: list[UrlSource] = []

    async def make(
        *,
        allow_private: bool = True,
        allowed_networks: tuple[str, ...] = (),
        resolver: Resolver = system_resolver,
        max_bytes: int = 64 * MiB,
        total_timeout_s: float = 20.0,
        attempts: int = 2,
        max_redirects: int = 3,
        store: Bucket | None = None,
    ) -> Harness:
        policy = AddressPolicy(
            allow_private, tuple(ipaddress.ip_network(n) for n in allowed_networks)
        )
        source = UrlSource(
            policy,
            connect_timeout_s=3.0,
            read_timeout_s=5.0,
            max_redirects=max_redirects,
            resolver=resolver,
        )
        sources.append(source)
        states = FakeStates()
        h: Harness

        async def publish(envelope: Envelope) -> None:
            h.published.append(envelope)

        service = ImportService(
            store or bucket,
            source,
            states,
            publish,
            ImportLimits(max_bytes=max_bytes, total_timeout_s=total_timeout_s, s3_timeout_s=5),
            RetryPolicy(attempts, 0.05, 0.1),
        )
        h = Harness(store or bucket, states, service)
        return h

    yield make
    for source in sources:
        await source.aclose()


def running(user: str, video_id: uuid.UUID) -> VideoView:
    return video_view(video_id, user, VideoStatus.RUNNING)


def stored(seaweed: SeaweedS3, key: str) -> bytes | None:
    client = seaweed.client()
    try:
        response = client.get_object(BUCKET, key)
    except Exception as exc:
        if getattr(exc, "code", None) == "NoSuchKey":
            return None
        raise
    try:
        data: bytes = response.read()
        return data
    finally:
        response.close()
        response.release_conn()


def failure_reason(outcome: Envelope) -> str:
    message = outcome.message()
    assert isinstance(message, StorageImportFailed), message
    return message.reason


# ------------------------------------------------------------------------- success


async def test_a_real_mp4_is_imported_and_a_redelivery_reports_the_same_fact(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness()
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    mp4 = small_mp4()
    url = web.serve(f"{vid}.mp4", mp4)
    fact = wrap(
        RunPodJobOutputAtUrl(video_id=vid, runpod_job_id="j", url=url, object_key=key), user
    )

    first = await h.deliver(fact)
    message = first.message()
    assert isinstance(message, StorageObjectImported)
    assert (message.object_key, message.size_bytes) == (key, len(mp4))
    assert message.content_type == "video/mp4"
    assert stored(seaweed, key) == mp4
    assert seaweed.client().stat_object(BUCKET, key).content_type == "video/mp4"

    # Redelivered before jobs recorded it: the same fact (same id) again, same object.
    again = await h.deliver(fact)
    assert again.event_id == first.event_id
    assert again.message() == message
    assert stored(seaweed, key) == mp4

    # Redelivered after jobs recorded the completion: nothing to do, nothing downloaded.
    h.states.set(vid, video_view(vid, user, VideoStatus.COMPLETED, object_key=key))
    hits = web.hits(f"{vid}.mp4")
    before = len(h.published)
    await h.service.on_runpod_event(fact)
    assert len(h.published) == before
    assert web.hits(f"{vid}.mp4") == hits
    assert stored(seaweed, key) == mp4


async def test_a_large_result_of_unknown_length_is_streamed_in_parts(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness()
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    content = mp4_like(9 * MiB + 123)  # more than one 8 MiB part: a multipart upload
    url = web.serve(f"{vid}.mp4", content) + "?chunked=1"
    outcome = await h.run(url, user, vid, key)
    message = outcome.message()
    assert isinstance(message, StorageObjectImported), message
    assert message.size_bytes == len(content)
    data = stored(seaweed, key)
    assert data is not None
    assert hashlib.sha256(data).digest() == hashlib.sha256(content).digest()


async def test_jobs_unavailable_does_not_block_the_import(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness()
    h.states.down = True
    user, vid, key = new_video()
    outcome = await h.run(web.serve(f"{vid}.mp4", small_mp4()), user, vid, key)
    assert isinstance(outcome.message(), StorageObjectImported)
    assert stored(seaweed, key) == small_mp4()


# ------------------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize(
    "url_template",
    [
        "http://127.0.0.1:{port}/files/{name}",
        "http://localhost:{port}/files/{name}",  # a name that resolves to loopback
        "http://127.1:{port}/files/{name}",
        "http://2130706433:{port}/files/{name}",  # 127.0.0.1 as one decimal number
        "http://0x7f000001:{port}/files/{name}",
        "http://0.0.0.0:{port}/files/{name}",
        "http://[::1]:{port}/files/{name}",
        "http://[::ffff:127.0.0.1]:{port}/files/{name}",
        "http://10.0.0.1/files/{name}",
        "http://172.16.5.4/files/{name}",
        "http://192.168.1.1/files/{name}",
        "http://100.100.100.200/latest/meta-data/",  # Alibaba metadata (shared range)
        "http://169.254.169.254/latest/meta-data/",  # AWS/GCP/Azure metadata (link-local)
        "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IPv6 metadata (unique local)
        "http://[fe80::1]/files/{name}",
        "https://127.0.0.1:{port}/files/{name}",
    ],
)
async def test_non_public_addresses_are_refused_before_connecting(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3, url_template: str
) -> None:
    h = await harness(allow_private=False)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    name = f"{vid}.mp4"
    url = url_template.format(port=web.port, name=name)
    web.serve(name, small_mp4())
    outcome = await h.run(url, user, vid, key)
    assert "not a public address" in failure_reason(outcome)
    assert web.hits(name) == 0
    assert stored(seaweed, key) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://example.com/video.mp4", "scheme 'ftp'"),
        ("gopher://127.0.0.1:70/_x", "scheme 'gopher'"),
        ("data:video/mp4;base64,AAAAGGZ0eXA=", "scheme 'data'"),
        ("//example.com/video.mp4", "scheme '(none)'"),
        ("http:///video.mp4", "no host"),
        ("http://example.com:99999/video.mp4", "invalid URL"),
    ],
)
async def test_only_http_and_https_urls_are_fetched(
    harness: MakeHarness, seaweed: SeaweedS3, url: str, expected: str
) -> None:
    h = await harness(allow_private=True)  # even where private hosts are allowed
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    outcome = await h.run(url, user, vid, key)
    assert expected in failure_reason(outcome)
    assert stored(seaweed, key) is None


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/files/{name}",
        "http://localhost:{port}/files/{name}",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
async def test_redirects_to_non_public_hosts_or_other_schemes_are_refused(
    harness: MakeHarness, web: FakeWeb, web2: FakeWeb, seaweed: SeaweedS3, target: str
) -> None:
    # web2 (127.0.0.2) stands for a public file host: its address is explicitly allowed.
    h = await harness(allow_private=False, allowed_networks=("127.0.0.2/32",))
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    name = f"{vid}.mp4"
    web.serve(name, small_mp4())
    redirect = web2.url(f"/redirect?to={target.format(port=web.port, name=name)}")
    outcome = await h.run(redirect, user, vid, key)
    reason = failure_reason(outcome)
    assert "not a public address" in reason or "scheme 'file'" in reason
    assert web2.hits(f"/redirect?to={target.format(port=web.port, name=name)}") == 1
    assert web.hits(name) == 0  # the private host was never asked
    assert stored(seaweed, key) is None


async def test_redirects_between_allowed_hosts_are_followed_up_to_the_limit(
    harness: MakeHarness, web2: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness(allow_private=False, allowed_networks=("127.0.0.2/32",), max_redirects=2)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    file_url = web2.serve(f"{vid}.mp4", small_mp4())
    once = web2.url(f"/redirect?to={file_url}")
    outcome = await h.run(once, user, vid, key)
    assert isinstance(outcome.message(), StorageObjectImported)
    assert stored(seaweed, key) == small_mp4()

    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    three = web2.url("/redirect?to=" + web2.url("/redirect?to=" + once))
    outcome = await h.run(three, user, vid, key)
    assert "more than 2 redirects" in failure_reason(outcome)
    assert stored(seaweed, key) is None


async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    harness: MakeHarness, web: FakeWeb, web2: FakeWeb, seaweed: SeaweedS3
) -> None:
    """DNS rebinding: the first answer is allowed, any later one would point inside."""
    answers: list[list[IPAddress]] = [
        [ipaddress.ip_address("127.0.0.2")],
        [ipaddress.ip_address("127.0.0.1")],
    ]
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return answers[min(len(lookups), len(answers)) - 1]

    h = await harness(allow_private=False, allowed_networks=("127.0.0.2/32",), resolver=rebinding)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    name = f"{vid}.mp4"
    web.serve(name, b"evil")  # what a rebound connection would get
    web2.serve(name, small_mp4())
    assert web.port != web2.port
    url = f"http://files.rebind.test:{web2.port}/files/{name}"  # unknown to the system's DNS
    outcome = await h.run(url, user, vid, key)
    assert isinstance(outcome.message(), StorageObjectImported)
    assert lookups == ["files.rebind.test"]  # resolved once; the socket used that answer
    assert web2.hits(name) == 1 and web.hits(name) == 0
    assert stored(seaweed, key) == small_mp4()


async def test_a_name_with_any_non_public_address_is_refused(
    harness: MakeHarness, web2: FakeWeb, seaweed: SeaweedS3
) -> None:
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("10.1.2.3")]

    h = await harness(allow_private=False, allowed_networks=("127.0.0.2/32",), resolver=mixed)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    name = f"{vid}.mp4"
    web2.serve(name, small_mp4())
    outcome = await h.run(f"http://mixed.test:{web2.port}/files/{name}", user, vid, key)
    assert "10.1.2.3" in failure_reason(outcome)
    assert web2.hits(name) == 0
    assert stored(seaweed, key) is None


# ------------------------------------------------------------------------- content checks


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<!doctype html><html><body>not a video</body></html>", "not an MP4"),
        (b"", "not an MP4"),
        (b"\x00\x00\x00\x00ftyp", "not an MP4"),  # a box size below 8
        (b"GIF89a" + b"\0" * 100, "not an MP4"),
    ],
)
async def test_non_mp4_results_are_refused(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3, content: bytes, reason: str
) -> None:
    h = await harness()
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    outcome = await h.run(web.serve(f"{vid}.bin", content), user, vid, key)
    assert reason in failure_reason(outcome)
    assert stored(seaweed, key) is None


@pytest.mark.parametrize(
    ("size", "max_bytes", "chunked"),
    [
        (5000, 1000, False),  # refused on its Content-Length
        (5000, 1000, True),  # no length: refused while streaming
        (12 * MiB, 10 * MiB, True),  # refused after a first part was uploaded: aborted
    ],
)
async def test_results_over_the_size_cap_are_refused_and_leave_nothing(
    harness: MakeHarness,
    web: FakeWeb,
    seaweed: SeaweedS3,
    size: int,
    max_bytes: int,
    chunked: bool,
) -> None:
    h = await harness(max_bytes=max_bytes)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    url = web.serve(f"{vid}.mp4", mp4_like(size)) + ("?chunked=1" if chunked else "")
    outcome = await h.run(url, user, vid, key)
    assert f"larger than the {max_bytes}-byte limit" in failure_reason(outcome)
    assert stored(seaweed, key) is None
    assert object_keys(seaweed.client(), BUCKET, f"videos/{user}/") == set()


async def test_a_download_slower_than_the_deadline_is_refused(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness(total_timeout_s=1.0)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    started = time.monotonic()
    outcome = await h.run(web.url(f"/drip?seconds=8&v={vid}"), user, vid, key)
    assert "longer than allowed" in failure_reason(outcome)
    assert time.monotonic() - started < 6
    assert stored(seaweed, key) is None


@pytest.mark.parametrize(("status", "retried"), [(404, False), (403, False), (503, True)])
async def test_error_answers_fail_the_import_transient_ones_after_retries(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3, status: int, retried: bool
) -> None:
    h = await harness(attempts=3)
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    path = f"/status/{status}?v={vid}"
    outcome = await h.run(web.url(path), user, vid, key)
    reason = failure_reason(outcome)
    assert f"answered HTTP {status}" in reason
    assert web.hits(path) == (3 if retried else 1)
    assert ("after 3 attempts" in reason) is retried


async def test_an_import_while_s3_is_down_fails_after_its_retries_without_s3_details(
    harness: MakeHarness, web: FakeWeb
) -> None:
    nowhere = S3Settings(
        s3_endpoint=f"127.0.0.1:{free_port()}",  # nothing listens: connection refused
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
    )
    h = await harness(attempts=3, store=Bucket(make_client(nowhere, timeout_s=2.0), BUCKET))
    user, vid, key = new_video()
    h.states.set(vid, running(user, vid))
    name = f"{vid}.mp4"
    outcome = await h.run(web.serve(name, small_mp4()), user, vid, key)
    assert failure_reason(outcome) == "our storage was unavailable; the import was tried 3 times"
    assert web.hits(name) == 3


# ------------------------------------------------------------------------- video lifecycle


@pytest.mark.parametrize(
    ("status", "known"),
    [
        (VideoStatus.DELETED, True),
        (VideoStatus.CANCELLED, True),
        (VideoStatus.FAILED, True),
        (None, False),
    ],
)
async def test_nothing_is_downloaded_for_a_video_that_is_over_or_unknown(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3, status: Any, known: bool
) -> None:
    h = await harness()
    user, vid, key = new_video()
    if known:
        h.states.set(vid, video_view(vid, user, status))
    name = f"{vid}.mp4"
    outcome = await h.run(web.serve(name, small_mp4()), user, vid, key)
    reason = failure_reason(outcome)
    assert (status.value if known else "unknown") in reason
    assert web.hits(name) == 0
    assert stored(seaweed, key) is None


async def test_a_video_deleted_during_the_import_keeps_no_file(
    harness: MakeHarness, web: FakeWeb, seaweed: SeaweedS3
) -> None:
    h = await harness()
    user, vid, key = new_video()
    # Running when the import starts, deleted by the time the upload is done.
    h.states.set(vid, running(user, vid), video_view(vid, user, VideoStatus.DELETED))
    name = f"{vid}.mp4"
    outcome = await h.run(web.serve(name, small_mp4()), user, vid, key)
    assert "became deleted during the import" in failure_reason(outcome)
    assert web.hits(name) == 1
    assert stored(seaweed, key) is None


@pytest.mark.parametrize(
    "key_for",
    [
        lambda user, vid: f"videos/other-user/{vid}/video.mp4",  # another user's prefix
        lambda user, vid: f"videos/{user}/{uuid.uuid4()}/video.mp4",  # another video
        lambda user, vid: f"videos/{user}/{vid}/../../x/video.mp4",
        lambda user, vid: "elsewhere/video.mp4",
    ],
)
async def test_an_object_key_outside_the_videos_prefix_is_refused(
    harness: MakeHarness,
    web: FakeWeb,
    seaweed: SeaweedS3,
    key_for: Callable[[str, uuid.UUID], str],
) -> None:
    h = await harness()
    user, vid, _ = new_video()
    h.states.set(vid, running(user, vid))
    key = key_for(user, vid)
    name = f"{vid}.mp4"
    outcome = await h.run(web.serve(name, small_mp4()), user, vid, key)
    assert "outside the video's prefix" in failure_reason(outcome)
    assert web.hits(name) == 0
    written = object_keys(seaweed.client(), BUCKET)
    assert not any(str(vid) in k or k.startswith("elsewhere/") for k in written)
