"""The storage service's handling without servers: the connection guard, bounded retries, and
the dead-lettering of a deletion that spent its budget (once, not twice)."""

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import httpcore
import pytest

from openv_contracts import Envelope
from openv_contracts.events import VideoDeleted
from openv_contracts.facts import RunPodJobCompleted
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.storage_keys import video_prefix
from openv_contracts.video import VideoParams, VideoStatus
from openv_infra.addresses import AddressPolicy, IPAddress
from openv_infra.failures import PermanentError, TransientError
from openv_infra.guarded_network import AddressRefused, GuardedBackend, Resolver
from openv_storage.adapters.bucket import S3Unreachable, StorageUnavailable
from openv_storage.domain.retry import RetryPolicy
from openv_storage.entrypoints.consumers import DeadLetterWhenExhausted
from openv_storage.service_layer.deletions import DeletionService
from openv_storage.service_layer.retrying import RetriesExhausted, with_retries


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the real sockets: records where connections were asked to go."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.connected: list[str] = []
        self.refuse = refuse or set()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        if host in self.refuse:
            raise httpcore.ConnectError(f"{host} refused")
        return httpcore.AsyncMockStream([])

    async def sleep(self, seconds: float) -> None:
        pass


def resolver_of(*answers: str) -> tuple[list[str], Resolver]:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in answers]

    return calls, resolve


async def test_the_guard_connects_to_the_address_it_checked() -> None:
    inner = RecordingBackend()
    calls, resolve = resolver_of("93.184.215.14")
    guard = GuardedBackend(AddressPolicy(), resolve, inner)
    await guard.connect_tcp("files.example.com", 443)
    assert calls == ["files.example.com"]
    assert inner.connected == ["93.184.215.14"]  # the address, never the name again


async def test_one_non_public_address_among_public_ones_refuses_the_host() -> None:
    inner = RecordingBackend()
    _, resolve = resolver_of("93.184.215.14", "169.254.169.254")
    guard = GuardedBackend(AddressPolicy(), resolve, inner)
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):
        await guard.connect_tcp("files.example.com", 80)
    assert inner.connected == []


async def test_the_next_checked_address_is_tried_when_one_refuses() -> None:
    inner = RecordingBackend(refuse={"93.184.215.14"})
    _, resolve = resolver_of("93.184.215.14", "93.184.215.15")
    guard = GuardedBackend(AddressPolicy(), resolve, inner)
    await guard.connect_tcp("files.example.com", 80)
    assert inner.connected == ["93.184.215.14", "93.184.215.15"]


async def test_unresolvable_hosts_and_unix_sockets_do_not_connect() -> None:
    inner = RecordingBackend()
    _, resolve = resolver_of()
    guard = GuardedBackend(AddressPolicy(allow_private=True), resolve, inner)
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_tcp("nothing.example", 80)
    with pytest.raises(AddressRefused):
        await guard.connect_unix_socket("/var/run/docker.sock")
    assert inner.connected == []


async def no_sleep(seconds: float) -> None:
    pass


async def test_retries_are_bounded_and_only_for_the_given_errors() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise StorageUnavailable("down")
        return "ok"

    assert await with_retries("x", flaky, RetryPolicy(3, 0, 0), (StorageUnavailable,)) == "ok"

    attempts = 0
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(RetriesExhausted, match="x failed after 2 attempts; last error: down"):
        await with_retries("x", flaky, RetryPolicy(2, 0.5, 1), (StorageUnavailable,), sleep=record)
    assert attempts == 2
    assert slept == [0.5]

    async def broken() -> str:
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        await with_retries("x", broken, RetryPolicy(5, 0, 0), (StorageUnavailable,))


class DownBucket:
    """A bucket whose S3 is unreachable."""

    name = "b"

    def __init__(self, error: StorageUnavailable | None = None) -> None:
        self.calls = 0
        self.error = error or StorageUnavailable("S3 AccessDenied: Access Denied.")
        self.up = False

    async def keys(self, prefix: str) -> list[str]:
        self.calls += 1
        if self.up:
            return []
        raise self.error

    async def remove(self, keys: list[str]) -> None:
        assert self.up and not keys, "only reached once S3 is back, with nothing to remove"


def deleted(prefix: str | None = None) -> Envelope:
    video_id = uuid4()
    message = VideoDeleted(
        video_id=video_id,
        previous_status=VideoStatus.COMPLETED,
        object_prefix=video_prefix("alice", video_id) if prefix is None else prefix,
    )
    return Envelope.wrap(message, user_id="alice")


async def test_an_exhausted_deletion_is_dead_lettered_without_spending_the_budget_twice() -> None:
    bucket = DownBucket()
    published: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        published.append(envelope)

    service = DeletionService(bucket, publish, RetryPolicy(3, 0, 0), NoVideos(), sleep=no_sleep)
    now = 0.0
    handle = DeadLetterWhenExhausted(service.on_video_event, remember_s=60, clock=lambda: now)
    event = deleted()
    # envelope_consumer calls the handler once, then once more to isolate the poison message.
    with pytest.raises(PermanentError, match="failed after 3 attempts") as first:
        await handle(event)
    with pytest.raises(PermanentError) as second:
        await handle(event)
    assert str(first.value) == str(second.value)
    assert str(first.value).startswith("storage: removing the objects under videos/alice/")
    assert bucket.calls == 3
    assert service.stats.deletion_failures == 3
    assert service.stats.deletions_given_up == 1
    assert published == []
    # A redelivery soon after (the dead-letter publish failed, or the batch ran out of its
    # poll interval) does not spend the budget again either ...
    now = 59.0
    with pytest.raises(PermanentError):
        await handle(event)
    assert bucket.calls == 3
    # ... a later one (a replay from the dead-letter topic) tries S3 again.
    now = 61.0
    with pytest.raises(PermanentError):
        await handle(event)
    assert bucket.calls == 6


@pytest.mark.parametrize("prefix", ["videos/", "videos/alice/", "other/", "videos/alice/x/"])
async def test_a_deletion_never_removes_a_broader_prefix(prefix: str) -> None:
    bucket = DownBucket()

    async def publish(envelope: Envelope) -> None:
        raise AssertionError("nothing to report")

    service = DeletionService(bucket, publish, RetryPolicy(3, 0, 0), NoVideos(), sleep=no_sleep)
    with pytest.raises(PermanentError, match="refusing to delete"):
        await service.on_video_event(deleted(prefix))
    assert bucket.calls == 0


class StubbornBucket:
    """Removal answers success but takes away only one object per call (a lagging store)."""

    name = "b"

    def __init__(self, keys: set[str]) -> None:
        self.stored = set(keys)
        self.removals = 0

    async def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.stored if k.startswith(prefix))

    async def remove(self, keys: list[str]) -> None:
        self.removals += 1
        if keys:
            self.stored.discard(keys[0])


async def test_the_fact_is_published_only_once_a_fresh_listing_is_empty() -> None:
    event = deleted()
    prefix = event.data["object_prefix"]
    bucket = StubbornBucket({f"{prefix}video.mp4", f"{prefix}poster.jpg", "videos/bob/other"})
    published: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        assert await bucket.keys(prefix) == []  # really gone when reported
        published.append(envelope)

    service = DeletionService(bucket, publish, RetryPolicy(5, 0, 0), NoVideos(), sleep=no_sleep)
    await service.on_video_event(event)
    assert bucket.removals == 2  # the first pass left one behind: tried again
    assert service.stats.deletion_failures == 1
    [fact] = published
    assert fact.data["objects_removed"] == 2
    assert bucket.stored == {"videos/bob/other"}


async def test_a_consumer_for_some_types_skips_the_others_unread() -> None:
    """Storage reads every video event but acts on deletions only: the others are skipped
    by their `event-type` header, without being decoded (this one's value is not even JSON);
    a record without the header is decoded and then skipped by its type."""
    from types import SimpleNamespace
    from typing import Any

    from openv_contracts.events import VideoSubmitted
    from openv_infra.consuming import envelope_consumer
    from openv_infra.publishing import kafka_headers

    def record(envelope: Envelope | None, headers: bool = True) -> SimpleNamespace:
        if envelope is None:  # a submitted event's header on an unreadable value
            return SimpleNamespace(headers=[("event-type", b"VideoSubmitted")], value=b"{")
        return SimpleNamespace(
            headers=kafka_headers(envelope) if headers else [],
            value=envelope.model_dump_json().encode(),
        )

    handled: list[list[str]] = []

    async def handle(envelopes: list[Envelope]) -> None:
        handled.append([e.type for e in envelopes])

    broker: Any = None  # nothing is dead-lettered: the broker is never used
    consume = envelope_consumer(broker, "storage", handle, types=frozenset({"VideoDeleted"}))
    submitted = Envelope.wrap(VideoSubmitted(video_id=uuid4(), runpod_job_id="j"), user_id="a")
    batch = (
        record(None),
        record(deleted()),
        record(submitted, headers=False),
        record(deleted(), headers=False),
    )
    await consume(batch)
    assert handled == [["VideoDeleted", "VideoDeleted"]]
    await consume((record(submitted),))
    assert handled == [["VideoDeleted", "VideoDeleted"]]  # nothing left: not called


async def test_a_deletion_outlasting_its_budget_in_an_s3_outage_waits_for_s3() -> None:
    """S3 down longer than the retry budget (the fault suite's 30 s outage): the deletion is
    redelivered once S3 is back, not dead-lettered (its files would stay until an operator
    replayed it)."""
    bucket = DownBucket(S3Unreachable("listing: NewConnectionError: Connection refused"))
    published: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        published.append(envelope)

    service = DeletionService(bucket, publish, RetryPolicy(3, 0, 0), NoVideos(), sleep=no_sleep)
    handle = DeadLetterWhenExhausted(service.on_video_event, remember_s=60, clock=lambda: 0.0)
    event = deleted()
    with pytest.raises(TransientError, match="failed after 3 attempts"):
        await handle(event)
    bucket.up = True  # the redelivery, S3 back
    await handle(event)
    assert [e.type for e in published] == ["StorageObjectsDeleted"]


class NoVideos:
    """The jobs service's view of videos, for the deletion service: `states` by id."""

    def __init__(self, states: dict[UUID, VideoStatus] | None = None, down: bool = False) -> None:
        self.states = states or {}
        self.down = down

    async def video(self, video_id: UUID) -> VideoView | None:
        if self.down:
            raise JobsUnavailable("connection refused")
        status = self.states.get(video_id)
        if status is None:
            return None
        now = datetime.now(UTC)
        return VideoView(
            id=video_id,
            user_id="alice",
            status=status,
            progress=None,
            prompt="p",
            params=VideoParams(seed=1),
            duration_seconds=1.0,
            created_at=now,
            updated_at=now,
            version=3,
        )


def completed(video_id: UUID) -> Envelope:
    key = f"{video_prefix('alice', video_id)}video.mp4"
    fact = RunPodJobCompleted(video_id=video_id, runpod_job_id="j", object_key=key, size_bytes=9)
    return Envelope.wrap(fact, user_id="alice")


@pytest.mark.parametrize(
    ("status", "left"),
    [(VideoStatus.DELETED, 1), (VideoStatus.COMPLETED, 3), (None, 3)],
)
async def test_a_completion_of_a_video_deleted_meanwhile_removes_its_late_file(
    status: VideoStatus | None, left: int
) -> None:
    """The bridge stored a job's output after the deletion's purge (it lagged): the completion
    fact finds the video deleted and purges its prefix again; a live video keeps its file."""
    video_id = uuid4()
    prefix = video_prefix("alice", video_id)
    bucket = StubbornBucket({f"{prefix}video.mp4", f"{prefix}uploads/a1", "videos/bob/other"})

    async def publish(envelope: Envelope) -> None:
        raise AssertionError("the deletion was reported already")

    states = {} if status is None else {video_id: status}
    service = DeletionService(
        bucket, publish, RetryPolicy(5, 0, 0), NoVideos(states), sleep=no_sleep
    )
    await service.on_completion(completed(video_id))
    assert len(bucket.stored) == left
    assert "videos/bob/other" in bucket.stored


async def test_a_completion_is_redelivered_while_the_jobs_service_does_not_answer() -> None:
    video_id = uuid4()
    prefix = video_prefix("alice", video_id)
    bucket = StubbornBucket({f"{prefix}video.mp4"})

    async def publish(envelope: Envelope) -> None:
        raise AssertionError("nothing to report")

    jobs = NoVideos(down=True)
    service = DeletionService(bucket, publish, RetryPolicy(5, 0, 0), jobs, sleep=no_sleep)
    with pytest.raises(TransientError):
        await service.on_completion(completed(video_id))
    assert bucket.stored == {f"{prefix}video.mp4"}
