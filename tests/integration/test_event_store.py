"""The jobs service's event store over a real Postgres (and the relay over a real broker):
exactly-once effects, race-free limits, gap-free relay, rebuildable projections, upcasting."""

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts import Envelope, Message, topics
from openv_contracts.commands import CancelVideo, DeleteVideo, RequestVideo
from openv_contracts.envelope import derived_event_id
from openv_contracts.events import VideoAccepted, video_stream_id
from openv_contracts.facts import (
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobRunning,
    RunPodJobSubmitted,
    StorageObjectsDeleted,
    VideoPosterStored,
)
from openv_contracts.storage_keys import video_output_key, video_poster_key
from openv_contracts.video import VideoParams, VideoStatus
from openv_infra.kafka import make_broker
from openv_infra.publishing import publish_many
from openv_infra.settings import KafkaSettings
from openv_jobs.adapters import projections
from openv_jobs.adapters import rebuild as rebuild_module
from openv_jobs.adapters.event_store import EventStore, save_and_read_after
from openv_jobs.adapters.postgres_recorder import PostgresRecorder
from openv_jobs.adapters.projector import Projector
from openv_jobs.adapters.queries import Queries
from openv_jobs.adapters.rebuild import rebuild
from openv_jobs.adapters.relay import Relay
from openv_jobs.domain.usage import Limits
from openv_jobs.service_layer.jobs_service import JobsService
from openv_jobs.service_layer.recorder import ConcurrencyConflict, RecordedEvent
from openv_localstack.servers import TansuBroker
from tests.jobs_messages import fact, request, vid

pytestmark = pytest.mark.integration

LIMITS = Limits(max_active_jobs=3, quota_seconds=600.0)
ServiceFactory = Callable[[Limits], JobsService]


@pytest.fixture
async def new_service(jobs_engine: AsyncEngine) -> AsyncIterator[ServiceFactory]:
    """Jobs services on the test's database, closed (their appending connections released)
    before the engine is disposed."""
    made: list[JobsService] = []

    def make(limits: Limits) -> JobsService:
        made.append(JobsService(PostgresRecorder(jobs_engine), limits))
        return made[-1]

    yield make
    for service in made:
        await service.close()


async def event_types(engine: AsyncEngine, video_id: UUID) -> list[str]:
    async with engine.connect() as conn:
        history = await EventStore(conn).load(video_stream_id(video_id))
    return [r.envelope.type for r in history]


async def test_redelivered_commands_and_facts_record_nothing_new(
    jobs_engine: AsyncEngine, new_service: ServiceFactory
) -> None:
    service = new_service(LIMITS)
    req = request("alice")
    [accepted] = await service.handle(req)
    # The event's id derives from the command's: a second decision could not be appended.
    assert accepted.envelope.event_id == derived_event_id(req.event_id, 0)
    again_decided = accepted.envelope.model_copy(update={"stream_version": 2})
    with pytest.raises(ConcurrencyConflict):
        async with jobs_engine.begin() as conn:
            await EventStore(conn).append_versioned([again_decided])
    assert await service.handle(req) == []
    assert await service.handle_batch([req, req]) == []
    submitted = fact(RunPodJobSubmitted(video_id=vid(req), runpod_job_id="j1"), "alice")
    assert len(await service.handle_batch([submitted, submitted])) == 1
    assert await service.handle(submitted) == []
    # A different fact saying the same thing (a duplicate webhook) changes nothing either.
    again = fact(RunPodJobSubmitted(video_id=vid(req), runpod_job_id="j1"), "alice")
    assert await service.handle(again) == []
    assert await event_types(jobs_engine, vid(req)) == ["VideoAccepted", "VideoSubmitted"]


async def test_a_request_for_an_existing_video_reaching_a_cold_service_records_nothing(
    jobs_engine: AsyncEngine,
    new_service: ServiceFactory,
) -> None:
    """A restarted service (empty cache) takes requests to name new videos and does not read
    them; the log's unique (stream, version) catches the one that does not, and the batch is
    decided again with every state read."""
    req = request("carol")
    [_] = await new_service(LIMITS).handle(req)
    retry = Envelope.wrap(RequestVideo.model_validate(req.data), user_id="carol")  # new id
    fresh = request("carol")
    restarted = new_service(LIMITS)
    recorded = await restarted.handle_batch([req, retry, fresh])
    assert [(r.envelope.type, r.envelope.data["video_id"]) for r in recorded] == [
        ("VideoAccepted", str(vid(fresh)))
    ]
    assert await event_types(jobs_engine, vid(req)) == ["VideoAccepted"]
    async with jobs_engine.connect() as conn:
        usage = (
            await conn.execute(sa.text("SELECT * FROM user_usage WHERE user_id = 'carol'"))
        ).one()
    assert usage.active_jobs == 2  # charged once per video, not again for the retry


async def test_a_batch_written_in_chunks_reports_the_positions_the_log_gave(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, jobs_dsn: str
) -> None:
    service = new_service(Limits(max_active_jobs=1, quota_seconds=1e9))
    await service.handle(request("first"))  # the log does not start empty
    requests = [request(f"user-{i // 2}") for i in range(300)]  # several chunks
    recorded = await service.handle_batch(requests)
    async with jobs_engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT event_id, position, event_type FROM events WHERE position > 1")
            )
        ).all()
    logged = {row.event_id: (row.position, row.event_type) for row in rows}
    assert [(r.position, r.envelope.type) for r in recorded] == [
        logged[r.envelope.event_id] for r in recorded
    ]
    assert [r.position for r in recorded] == list(range(2, 302))
    assert [r.envelope.event_id for r in recorded] == [
        derived_event_id(req.event_id, 0) for req in requests
    ]
    types = [r.envelope.type for r in recorded]
    assert types == ["VideoAccepted", "VideoRejected"] * 150  # decided in order
    # What the decision path reports is what the log holds, envelope for envelope, as the
    # relay reads it (a checkpoint nobody saved: from the start).
    pg = await asyncpg.connect(jobs_dsn)
    try:
        events, _ = await save_and_read_after(pg, "never-saved", None, 1000)
        stored = [r for r in events if r.position > 1]
    finally:
        await pg.close()
    assert [(r.position, r.envelope) for r in stored] == [
        (r.position, r.envelope) for r in recorded
    ]
    assert stored[0].envelope.causation_id == requests[0].event_id
    assert stored[0].envelope.correlation_id == requests[0].correlation_id


async def test_twenty_concurrent_creates_for_one_user_accept_exactly_three(
    jobs_engine: AsyncEngine,
    new_service: ServiceFactory,
) -> None:
    # Four service instances, as if four consumers raced (e.g. during a rebalance).
    services = [new_service(LIMITS) for _ in range(4)]
    requests = [request("racer") for _ in range(20)]
    results = await asyncio.gather(*(services[i % 4].handle(r) for i, r in enumerate(requests)))
    types = [r[0].envelope.type for r in results]
    assert types.count("VideoAccepted") == 3
    assert types.count("VideoRejected") == 17
    async with jobs_engine.connect() as conn:
        usage = (
            await conn.execute(sa.text("SELECT * FROM user_usage WHERE user_id = 'racer'"))
        ).one()
    assert usage.active_jobs == 3
    assert usage.used_seconds == pytest.approx(3 * 31 / 24)


async def test_quota_is_charged_on_acceptance_and_refunded_on_failure(
    jobs_engine: AsyncEngine,
    new_service: ServiceFactory,
) -> None:
    service = new_service(Limits(max_active_jobs=10, quota_seconds=10.0))
    first, second, third = (request("q", num_frames=127) for _ in range(3))  # 5.29 s each
    assert (await service.handle(first))[0].envelope.type == "VideoAccepted"
    assert (await service.handle(second))[0].envelope.type == "VideoRejected"
    failed = RunPodJobFailed(
        video_id=vid(first), runpod_job_id="j", code="worker_failed", message="x"
    )
    await service.handle(fact(failed, "q"))
    assert (await service.handle(third))[0].envelope.type == "VideoAccepted"


async def test_a_stale_expected_version_is_a_conflict(
    jobs_engine: AsyncEngine, new_service: ServiceFactory
) -> None:
    service = new_service(LIMITS)
    req = request("bob")
    [accepted] = await service.handle(req)
    stream = video_stream_id(vid(req))
    late = accepted.envelope.model_copy(update={"event_id": uuid4()})
    with pytest.raises(ConcurrencyConflict):
        async with jobs_engine.begin() as conn:
            await EventStore(conn).append(stream, 0, [late])
    assert await event_types(jobs_engine, vid(req)) == ["VideoAccepted"]


async def test_a_dropped_appending_connection_is_replaced_and_nothing_is_lost(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, jobs_dsn: str
) -> None:
    """The appending connection is held between batches without a pre-ping: one the server
    dropped while idle is replaced when the next batch begins."""
    service = new_service(LIMITS)
    first, second = request("erin"), request("erin")
    await service.handle(first)
    assert isinstance(service.recorder, PostgresRecorder)
    held = service.recorder.appends._pg
    assert held is not None
    admin = await asyncpg.connect(jobs_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", held.get_server_pid())
    finally:
        await admin.close()
    [accepted] = await service.handle(second)
    assert accepted.envelope.type == "VideoAccepted"
    assert service.recorder.appends._pg is not held
    assert await event_types(jobs_engine, vid(second)) == ["VideoAccepted"]


async def test_a_batch_that_fails_after_writing_rolls_back_and_the_connection_goes_on(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = new_service(LIMITS)
    req = request("frank")

    async def broken(*args: object) -> None:
        raise RuntimeError("usage write failed")

    monkeypatch.setattr(projections, "save_usages", broken)  # after the events' COPY
    with pytest.raises(RuntimeError):
        await service.handle(req)
    assert await event_types(jobs_engine, vid(req)) == []
    monkeypatch.undo()
    [accepted] = await service.handle(req)
    assert accepted.envelope.type == "VideoAccepted"


async def _drain(relay: Relay, pg: asyncpg.Connection) -> None:
    while await relay.step(pg):
        pass


async def _consume_all(kafka: TansuBroker, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        topics.VIDEO_EVENTS,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"check-{uuid4()}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(seen) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    seen.extend(json.loads(r.value)["event_id"] for r in records)
    finally:
        await consumer.stop()
    return seen


async def _relay_checkpoint(pg: asyncpg.Connection) -> tuple[int, int] | None:
    """The relay's saved position and its row version (xmin), None if never saved."""
    row = await pg.fetchrow(
        "SELECT position, xmin::text::bigint FROM checkpoints WHERE name = 'relay'"
    )
    return None if row is None else (row[0], row[1])


async def test_the_relay_saves_what_it_published_with_its_next_read(
    new_service: ServiceFactory, jobs_dsn: str
) -> None:
    published: list[int] = []

    async def publish(batch: list[RecordedEvent]) -> None:
        published.extend(r.position for r in batch)

    await new_service(LIMITS).handle_batch([request(f"relay-{n}") for n in range(3)])
    pg: asyncpg.Connection = await asyncpg.connect(jobs_dsn)
    try:
        relay = Relay(jobs_dsn, publish, batch_size=2)
        assert await relay.step(pg) == 2
        assert await _relay_checkpoint(pg) is None  # saved by the next step
        assert await relay.step(pg) == 1
        assert (await _relay_checkpoint(pg) or (0, 0))[0] == 2
        assert await relay.step(pg) == 0  # at the head: saves the last step's
        saved = await _relay_checkpoint(pg)
        assert saved is not None and saved[0] == 3
        assert await relay.step(pg) == 0
        assert await _relay_checkpoint(pg) == saved  # an idle step writes nothing
        assert published == [1, 2, 3]

        # Another relay (a new leader) resumes from the saved checkpoint...
        await new_service(LIMITS).handle(request("relay-late"))
        assert await Relay(jobs_dsn, publish).step(pg) == 1
        assert published == [1, 2, 3, 4]
    finally:
        await pg.close()
    # ... and publishes again a step that no later step saved (at least once).
    pg = await asyncpg.connect(jobs_dsn)
    try:
        assert (await _relay_checkpoint(pg) or (0, 0))[0] == 3
        assert await Relay(jobs_dsn, publish).step(pg) == 1
        assert published == [1, 2, 3, 4, 4]
    finally:
        await pg.close()


async def test_relay_never_skips_an_event_whose_lower_position_commits_last(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, jobs_dsn: str, kafka: TansuBroker
) -> None:
    broker = make_broker(KafkaSettings(kafka_bootstrap=kafka.bootstrap), "relay-test")
    await broker.start()
    published: list[RecordedEvent] = []

    async def publish(batch: list[RecordedEvent]) -> None:
        await publish_many(
            broker,
            topics.VIDEO_EVENTS,
            [(r.envelope, str(r.envelope.data["video_id"])) for r in batch],
        )
        published.extend(batch)

    relay = Relay(jobs_dsn, publish)
    service = new_service(LIMITS)
    pg: asyncpg.Connection = await asyncpg.connect(jobs_dsn)
    try:
        await _drain(relay, pg)
        slow_open = asyncio.Event()

        async def slow_appender() -> None:
            # Takes its position first, then holds its transaction open.
            async with jobs_engine.begin() as conn:
                store = EventStore(conn)
                await store.lock_appends()
                env = request("slow")
                accepted = VideoAccepted(
                    video_id=vid(env),
                    prompt="slow",
                    params=VideoParams(seed=1),
                    duration_seconds=1.0,
                    charged_seconds=1.0,
                    object_prefix="p/",
                )
                await store.append(video_stream_id(vid(env)), 0, [env.follow(accepted)])
                slow_open.set()
                await asyncio.sleep(0.6)

        slow = asyncio.create_task(slow_appender())
        await slow_open.wait()
        fast = asyncio.create_task(service.handle(request("fast")))
        await asyncio.sleep(0.2)
        # The fast append cannot be visible before the slow one: nothing to relay yet.
        assert await relay.step(pg) == 0
        await asyncio.gather(slow, fast)
        await _drain(relay, pg)
        positions = [r.position for r in published]
        assert len(published) == 2
        assert positions == sorted(positions)

        # Many appenders racing with a running relay: every event relayed once, in order.
        async def appender(n: int) -> None:
            for _ in range(15):
                await service.handle(request(f"user-{n}-{random.randint(0, 3)}"))
                await asyncio.sleep(random.random() / 100)

        async def relay_loop(stop: asyncio.Event) -> None:
            while not stop.is_set():
                await relay.step(pg)
                await asyncio.sleep(0.005)

        stop = asyncio.Event()
        loop = asyncio.create_task(relay_loop(stop))
        await asyncio.gather(*(appender(n) for n in range(8)))
        stop.set()
        await loop
        await _drain(relay, pg)
    finally:
        await pg.close()
        await broker.stop()
    async with jobs_engine.connect() as conn:
        all_ids = [
            str(r[0])
            for r in await conn.execute(sa.text("SELECT event_id FROM events ORDER BY position"))
        ]
    assert [str(r.envelope.event_id) for r in published] == all_ids
    assert len(all_ids) == 2 + 8 * 15
    on_the_broker = await _consume_all(kafka, len(all_ids))
    assert set(all_ids) <= set(on_the_broker)


async def _mixed_workload(service: JobsService) -> None:
    rng = random.Random(7)
    videos: list[tuple[UUID, str]] = []
    for i in range(60):
        user = f"mix-{i % 7}"
        req = request(user, num_frames=rng.choice([7, 31, 127]))
        await service.handle(req)
        videos.append((vid(req), user))
    for video_id, user in videos:
        roll = rng.random()
        facts: list[Message] = [
            RunPodJobSubmitted(video_id=video_id, runpod_job_id=f"j-{video_id}")
        ]
        if roll < 0.4:
            facts += [
                RunPodJobRunning(video_id=video_id, runpod_job_id="j", progress=30),
                RunPodJobRunning(video_id=video_id, runpod_job_id="j", progress=70),
                RunPodJobCompleted(
                    video_id=video_id, runpod_job_id="j", object_key="k", size_bytes=99
                ),
            ]
        elif roll < 0.6:
            facts.append(
                RunPodJobFailed(
                    video_id=video_id, runpod_job_id="j", code="worker_failed", message="x"
                )
            )
        elif roll < 0.8:
            facts.append(CancelVideo(video_id=video_id))
        if rng.random() < 0.3:
            facts += [
                DeleteVideo(video_id=video_id),
                StorageObjectsDeleted(video_id=video_id, objects_removed=1),
            ]
        await service.handle_batch([fact(f, user) for f in facts])
    # Requests after slots were freed, in one batch.
    await service.handle_batch([request(f"mix-{i % 7}") for i in range(14)])


async def _rows(dsn: str, table: str, key: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]  # noqa: S608
    finally:
        await conn.close()


async def _meanwhile(service: JobsService, jobs_dsn: str) -> None:
    """Events for old and new videos, as if they arrived while a rebuild folds the bulk."""
    conn = await asyncpg.connect(jobs_dsn)
    queued = await conn.fetch(
        "SELECT data->>'video_id' AS video_id, metadata->>'user_id' AS user_id FROM events e "
        "WHERE event_type = 'VideoAccepted' AND NOT EXISTS (SELECT 1 FROM events f "
        "WHERE f.stream_id = e.stream_id AND f.stream_version > 2) LIMIT 3"
    )
    await conn.close()
    assert queued  # submitted only: cancelling them refunds
    await service.handle_batch(
        [fact(CancelVideo(video_id=UUID(r["video_id"])), r["user_id"]) for r in queued]
        + [request("late-user"), request("mix-1")]
    )


@pytest.mark.parametrize("parts", [1, 2])
async def test_rebuilt_projections_equal_the_live_ones(
    jobs_engine: AsyncEngine,
    new_service: ServiceFactory,
    jobs_dsn: str,
    parts: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = new_service(LIMITS)
    await _mixed_workload(service)
    fold_parts = rebuild_module._fold_parts

    async def appends_meanwhile(dsn: str, head: int, n: int) -> tuple[int, int, int]:
        folded = await fold_parts(dsn, head, n)
        await _meanwhile(service, jobs_dsn)  # after the bulk's head: the locked tail folds it
        return folded

    monkeypatch.setattr(rebuild_module, "_fold_parts", appends_meanwhile)
    result = await rebuild(jobs_dsn, swap=False, parts=parts)  # 2: a second process folds too
    monkeypatch.undo()

    assert await Projector(jobs_dsn, batch_size=50).catch_up() > 0  # in several batches
    live_videos = await _rows(jobs_dsn, "videos", "video_id")
    live_usage = await _rows(jobs_dsn, "user_usage", "user_id")
    assert len(live_videos) == result.videos == 76
    assert len(live_usage) == result.users == 8
    assert {v["status"] for v in live_videos} >= {
        "completed",
        "failed",
        "cancelled",
        "deleted",
        "rejected",
    }
    assert await _rows(jobs_dsn, "videos_rebuild", "video_id") == live_videos
    assert await _rows(jobs_dsn, "user_usage_rebuild", "user_id") == live_usage

    # Swap in, with the live tables first spoiled: the log alone restores them.
    conn = await asyncpg.connect(jobs_dsn)
    await conn.execute("UPDATE videos SET status = 'queued', progress = 0")
    await conn.execute("DELETE FROM user_usage")
    await conn.close()
    await rebuild(jobs_dsn, swap=True, parts=parts)
    assert await _rows(jobs_dsn, "videos", "video_id") == live_videos
    assert await _rows(jobs_dsn, "user_usage", "user_id") == live_usage


async def test_reads_are_exact_while_the_projector_is_behind(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, jobs_dsn: str
) -> None:
    service, queries = new_service(LIMITS), Queries(jobs_engine, LIMITS)
    first, second = request("reader"), request("reader")
    await service.handle_batch([first, second])
    await Projector(jobs_dsn).catch_up()  # rows at VideoAccepted
    job = RunPodJobSubmitted(video_id=vid(first), runpod_job_id="j1")
    running = RunPodJobRunning(video_id=vid(first), runpod_job_id="j1", progress=40)
    await service.handle_batch([fact(job, "reader"), fact(running, "reader")])
    third = request("reader")
    await service.handle(third)
    assert (await _rows(jobs_dsn, "videos", "video_id"))[0]["version"] == 1  # rows behind

    view = await queries.video(vid(first))
    assert view is not None
    assert (view.status.value, view.progress, view.version) == ("running", 40, 3)
    assert view.runpod_job_id == "j1"
    # As it was when decided (what a create answers), folded from the log alone.
    decided = await queries.video(vid(first), version=1)
    assert decided is not None
    assert (decided.status.value, decided.version, decided.runpod_job_id) == ("queued", 1, None)
    assert decided.created_at == view.created_at
    assert await queries.video(uuid4(), version=1) is None
    page = await queries.videos("reader", 10, None, None)
    # The unwritten third first; the other two share a created_at (one batch): by id.
    older = sorted([vid(first), vid(second)], reverse=True)
    assert [v.id for v in page.data] == [vid(third), *older]
    statuses = {v.id: v.status.value for v in page.data}
    assert statuses == {vid(third): "queued", vid(second): "queued", vid(first): "running"}
    # A status filter never shows a video in another status.
    queued = await queries.videos("reader", 10, None, VideoStatus.QUEUED)
    assert {v.status.value for v in queued.data} == {"queued"}

    # Once caught up, the rows say the same; projecting again changes nothing.
    await Projector(jobs_dsn).catch_up()
    rows = await _rows(jobs_dsn, "videos", "video_id")
    assert len(rows) == 3
    assert await queries.video(vid(first)) == view
    conn = await asyncpg.connect(jobs_dsn)
    await conn.execute("UPDATE checkpoints SET position = 0 WHERE name = 'videos'")
    await conn.close()
    assert await Projector(jobs_dsn).catch_up() == 5  # the whole log again ...
    assert await _rows(jobs_dsn, "videos", "video_id") == rows  # ... never moves a row back


async def test_a_list_misses_no_video_the_projector_writes_while_it_reads(
    jobs_engine: AsyncEngine,
    new_service: ServiceFactory,
    jobs_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first page reads the rows, then the videos the projector has not written yet. If
    the projector commits in between, the rows read before it miss the new videos and the
    checkpoint read after it no longer lists them: both reads need one snapshot."""
    service, queries = new_service(LIMITS), Queries(jobs_engine, LIMITS)
    requests = [request("lister") for _ in range(3)]
    await service.handle_batch(requests)
    unwritten = projections.unprojected_new_videos

    async def projector_commits_first(*args: Any) -> list[Any]:
        await Projector(jobs_dsn).catch_up()
        return await unwritten(*args)

    monkeypatch.setattr(projections, "unprojected_new_videos", projector_commits_first)
    page = await queries.videos("lister", 10, None, None)
    assert {v.id for v in page.data} == {vid(one) for one in requests}
    assert len(await _rows(jobs_dsn, "videos", "video_id")) == 3  # the projector did commit


async def test_an_old_event_version_loads_as_the_current_model(
    jobs_engine: AsyncEngine, jobs_dsn: str
) -> None:
    video_id = uuid4()
    v1 = {
        "video_id": str(video_id),
        "prompt": "from 2025",
        "params": VideoParams(seed=5).model_dump(mode="json"),
        "duration_seconds": 31 / 24,
        "object_prefix": f"videos/old/{video_id}/",
    }
    conn = await asyncpg.connect(jobs_dsn)
    await conn.execute(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, "
        "data, metadata, occurred_at) VALUES ($1, $2, 1, 'VideoAccepted', 1, $3::jsonb, "
        "$4::jsonb, now())",
        uuid4(),
        video_stream_id(video_id),
        json.dumps(v1),
        json.dumps({"user_id": "old"}),
    )
    await conn.close()
    async with jobs_engine.connect() as c:
        [stored] = await EventStore(c).load(video_stream_id(video_id))
    message = stored.envelope.message()
    assert isinstance(message, VideoAccepted)
    assert message.charged_seconds == pytest.approx(31 / 24)
    assert message.prompt == "from 2025"
    # The rebuild reads it too, and the projection shows the video.
    await rebuild(jobs_dsn, swap=True)
    [row] = await _rows(jobs_dsn, "videos", "video_id")
    assert row["user_id"] == "old"
    assert row["charged_seconds"] == pytest.approx(31 / 24)


async def test_a_poster_is_recorded_once_and_projected_into_its_column(
    jobs_engine: AsyncEngine, new_service: ServiceFactory, jobs_dsn: str
) -> None:
    service, queries = new_service(LIMITS), Queries(jobs_engine, LIMITS)
    req = request("ida")
    video = vid(req)
    key = video_output_key("ida", video)
    done = RunPodJobCompleted(video_id=video, runpod_job_id="j", object_key=key, size_bytes=9)
    await service.handle_batch([req, fact(done, "ida")])
    poster = VideoPosterStored(
        video_id=video, object_key=video_poster_key("ida", video), width=64, height=64
    )
    [added] = await service.handle_batch([fact(poster, "ida"), fact(poster, "ida")])
    assert added.type == "VideoPosterAdded"
    view = await queries.video(video)  # folded from the log: the projector is behind
    assert view is not None and view.poster_key == video_poster_key("ida", video)
    await Projector(jobs_dsn).catch_up()
    [row] = [r for r in await _rows(jobs_dsn, "videos", "video_id") if r["video_id"] == video]
    assert (row["poster_key"], row["version"]) == (video_poster_key("ida", video), 3)
    assert await queries.video(video) == view  # from the row now
    [listed] = (await queries.videos("ida", 10, None, None)).data
    assert listed.poster_key == view.poster_key
