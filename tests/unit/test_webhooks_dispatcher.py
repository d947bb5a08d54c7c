"""The dispatcher and recorder with in-memory fakes: bounds per receiver and in all, order per
video, the same webhook-id on every attempt, deliveries recorded once per event."""

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from openv_contracts import Envelope
from openv_contracts.events import (
    VideoAccepted,
    VideoProgressed,
    VideoRunning,
    video_stream_id,
)
from openv_contracts.public_video import NO_LINKS
from openv_contracts.queries import VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_contracts.webhooks import WebhookDeliveryPage, WebhookEvent, WebhookTarget
from openv_infra.webhook_signing import new_secret
from openv_webhooks.domain.backoff import RetrySchedule
from openv_webhooks.domain.deliveries import AttemptResult, DeliveryState, Outcome
from openv_webhooks.domain.receivers import origin
from openv_webhooks.service_layer.attempts import Attempter
from openv_webhooks.service_layer.dispatching import Dispatcher, DispatchLimits
from openv_webhooks.service_layer.ports import Due, NewDelivery, Pick, StoredSecret, Watch
from openv_webhooks.service_layer.recording import Recorder
from openv_webhooks.service_layer.secrets import Secrets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def a_view(video_id: UUID, version: int = 1) -> VideoView:
    return VideoView(
        id=video_id,
        user_id="u",
        status=VideoStatus.QUEUED,
        progress=0,
        prompt="p",
        params=VideoParams(seed=1),
        duration_seconds=1.0,
        created_at=T0,
        updated_at=T0,
        version=version,
    )


@dataclass
class Row:
    due: Due
    state: DeliveryState = DeliveryState.PENDING
    next_at: datetime = T0
    lease: datetime | None = None


@dataclass
class MemoryQueue:
    rows: dict[UUID, Row] = field(default_factory=dict)
    attempts: list[tuple[UUID, AttemptResult]] = field(default_factory=list)

    def add(self, video_id: UUID, version: int, url: str) -> Due:
        due = Due(
            uuid4(), video_id, "u", version, WebhookEvent.PROGRESS, url, origin(url), T0,
            a_view(video_id, version), now() + timedelta(hours=1), 0,
        )  # fmt: skip
        self.rows[due.id] = Row(due)
        return due

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int, skip: Collection[str], pick: Pick
    ) -> list[Due]:
        pending = [r for r in self.rows.values() if r.state is DeliveryState.PENDING]
        candidates = [
            r.due
            for r in sorted(pending, key=lambda r: r.next_at)
            if r.next_at <= now
            and (r.lease is None or r.lease <= now)
            and r.due.origin not in skip
            and not any(
                o.due.video_id == r.due.video_id and o.due.version < r.due.version for o in pending
            )
        ]
        picked = pick(candidates[: limit * 4])
        for due in picked:
            self.rows[due.id].lease = lease_until
        return picked

    async def finish(self, due: Due, result: AttemptResult, outcome: Outcome) -> None:
        self.attempts.append((due.id, result))
        row = self.rows[due.id]
        row.state, row.lease = outcome.state, None
        row.next_at = outcome.next_attempt_at or row.next_at
        row.due = replace(row.due, failed_attempts=row.due.failed_attempts + (not result.delivered))

    async def backlog(self, now: datetime) -> tuple[int, float]:
        return sum(r.state is DeliveryState.PENDING for r in self.rows.values()), 0.0

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage:
        return WebhookDeliveryPage(data=[])

    async def replay(
        self, video_id: UUID | None, failed_since: datetime | None, now: datetime, window_s: float
    ) -> int:
        return 0


@dataclass
class MemorySecrets:
    stored: dict[str, StoredSecret] = field(default_factory=dict)

    async def get(self, user_id: str) -> StoredSecret | None:
        return self.stored.get(user_id)

    async def create(self, user_id: str, secret: StoredSecret) -> StoredSecret:
        return self.stored.setdefault(user_id, secret)

    async def replace(self, user_id: str, secret: StoredSecret) -> None:
        self.stored[user_id] = secret


class Receivers:
    """Fake HTTP: per-URL behaviour, tracks what is in flight and what arrived."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: Counter[str] = Counter()  # url -> failures still to answer
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.max_total = 0
        self.received: list[tuple[str, str, int]] = []  # (url, webhook-id, status)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]:
        self.in_flight[url] += 1
        self.max_in_flight[url] = max(self.max_in_flight[url], self.in_flight[url])
        self.max_total = max(self.max_total, sum(self.in_flight.values()))
        try:
            if url in self.gates:
                await self.gates[url].wait()
            await asyncio.sleep(0.01)
            status = 500 if self.fail[url] > 0 else 200
            self.fail[url] -= 1 if self.fail[url] > 0 else 0
            self.received.append((url, headers["webhook-id"], status))
            return status, None
        finally:
            self.in_flight[url] -= 1


class NoMetrics:
    def attempted(self, result: str, latency_s: float) -> None: ...
    def finished(self, outcome: str) -> None: ...
    def backlog(self, pending: int, oldest_age_s: float) -> None: ...


def dispatcher(
    queue: MemoryQueue, receivers: Receivers, concurrency: int = 64, per_receiver: int = 4
) -> Dispatcher:
    secrets = Secrets(MemorySecrets(), new_secret, 60, now)
    attempter = Attempter(receivers, secrets, lambda view: NO_LINKS, now)
    return Dispatcher(
        queue,
        attempter,
        DispatchLimits(concurrency, per_receiver, poll_s=0.01, lease_s=30),
        RetrySchedule(0.0, 0.0),
        NoMetrics(),
        now,
    )


async def until(probe: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not probe():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_a_hanging_receiver_fills_only_its_own_slots() -> None:
    queue, receivers = MemoryQueue(), Receivers()
    slow, fast = "https://slow.example/h", "https://fast.example/h"
    receivers.gates[slow] = asyncio.Event()  # never answers until set
    for _ in range(10):
        queue.add(uuid4(), 1, slow)
    for _ in range(10):
        queue.add(uuid4(), 1, fast)
    running = asyncio.create_task(dispatcher(queue, receivers, per_receiver=3).run_forever())
    try:
        await until(lambda: sum(u == fast for u, _, _ in receivers.received) == 10)
        assert receivers.max_in_flight[slow] == 3
        assert receivers.max_in_flight[fast] <= 3
        receivers.gates[slow].set()
        await until(lambda: len(receivers.received) == 20)
    finally:
        running.cancel()


async def test_attempts_in_flight_never_exceed_the_global_bound() -> None:
    queue, receivers = MemoryQueue(), Receivers()
    for n in range(40):
        queue.add(uuid4(), 1, f"https://r{n}.example/h")
    running = asyncio.create_task(dispatcher(queue, receivers, concurrency=5).run_forever())
    try:
        await until(lambda: len(receivers.received) == 40)
    finally:
        running.cancel()
    assert receivers.max_total == 5


async def test_a_videos_deliveries_go_in_order_and_retries_keep_the_webhook_id() -> None:
    queue, receivers = MemoryQueue(), Receivers()
    url = "https://one.example/h"
    video = uuid4()
    first, second = queue.add(video, 1, url), queue.add(video, 2, url)
    receivers.fail[url] = 2  # the first event fails twice
    running = asyncio.create_task(dispatcher(queue, receivers).run_forever())
    try:
        await until(lambda: len(receivers.received) == 4)
    finally:
        running.cancel()
    ids = [webhook for _, webhook, _ in receivers.received]
    first_id, second_id = "msg_" + first.id.hex, "msg_" + second.id.hex
    assert ids == [first_id, first_id, first_id, second_id]
    assert [status for _, _, status in receivers.received] == [500, 500, 200, 200]


@dataclass
class MemoryWatches:
    watched: dict[UUID, Watch] = field(default_factory=dict)
    deliveries: dict[UUID, NewDelivery] = field(default_factory=dict)

    async def watches(self, video_ids: Collection[UUID]) -> Mapping[UUID, Watch]:
        return {i: self.watched[i] for i in video_ids if i in self.watched}

    async def record(
        self, watch: Watch, held_version: int | None, delivery: NewDelivery | None
    ) -> bool:
        current = self.watched.get(watch.video_id)
        if (current.view.version if current else None) != held_version:
            return False
        self.watched[watch.video_id] = watch
        if delivery is not None:
            self.deliveries.setdefault(delivery.id, delivery)
        return True


class NoViews:
    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        raise AssertionError("no gap expected")


def stream(video_id: UUID, webhook: WebhookTarget | None) -> list[Envelope]:
    accepted = VideoAccepted(
        video_id=video_id, prompt="p", params=VideoParams(seed=1), duration_seconds=1.0,
        charged_seconds=1.0, object_prefix="x", webhook=webhook,
    )  # fmt: skip
    messages = [
        accepted,
        VideoRunning(video_id=video_id, progress=None),
        VideoProgressed(video_id=video_id, progress=40),
    ]
    return [
        Envelope.wrap(m, user_id="u", stream_id=video_stream_id(video_id), stream_version=n)
        for n, m in enumerate(messages, start=1)
    ]


async def test_recorder_records_each_matching_event_once_and_skips_other_videos() -> None:
    store = MemoryWatches()
    woken: list[int] = []
    recorder = Recorder(store, NoViews(), 3600, now, recorded=lambda: woken.append(1))
    watched, unwatched = uuid4(), uuid4()
    target = WebhookTarget(
        url="https://r.example/h", events=frozenset({WebhookEvent.QUEUED, WebhookEvent.PROGRESS})
    )
    events = stream(watched, target)
    await recorder.on_events(events + stream(unwatched, None))
    await recorder.on_events(events)  # redelivered
    assert set(store.watched) == {watched}
    assert store.watched[watched].view.version == 3
    assert store.watched[watched].view.progress == 40
    recorded = sorted(store.deliveries.values(), key=lambda d: d.version)
    assert [(d.version, d.event) for d in recorded] == [
        (1, WebhookEvent.QUEUED),
        (3, WebhookEvent.PROGRESS),  # `started` is not in the filter
    ]
    assert [d.id for d in recorded] == [events[0].event_id, events[2].event_id]
    assert woken == [1]
