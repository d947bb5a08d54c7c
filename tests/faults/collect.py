"""What the invariants are checked against, read from the stack's real servers after the load."""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from openv_contracts import topics
from openv_localstack.stack import BUCKET, LocalStack
from tests.faults.invariants import LogEvent, SimJob, TopicRecord, settled

Rows = dict[str, dict[str, Any]]


View = dict[str, Any] | None


def _poll_views(
    stack: LocalStack,
    videos: Mapping[str, str],
    tokens: Mapping[str, dict[str, str]],
    bound_s: float,
    done: Callable[[str, View], bool],
) -> tuple[dict[str, View], float]:
    """GET each video's gateway view (once a second) until `done` holds for all or `bound_s`
    passed; the last views and the time it took."""
    start = time.monotonic()
    views: dict[str, View] = dict.fromkeys(videos)
    with httpx.Client(base_url=stack.gateway_url, timeout=10.0) as api:
        while True:
            for vid, user in videos.items():
                if done(vid, views[vid]):
                    continue
                try:
                    response = api.get(f"/v1/videos/{vid}", headers=tokens[user])
                except httpx.TransportError:
                    continue
                if response.status_code == 200:
                    views[vid] = response.json()
            if all(done(v, views[v]) for v in videos) or time.monotonic() - start > bound_s:
                return views, time.monotonic() - start
            time.sleep(1.0)


def wait_settled(
    stack: LocalStack,
    videos: Mapping[str, str],
    tokens: Mapping[str, dict[str, str]],
    bound_s: float,
) -> tuple[dict[str, View], float]:
    """Poll each video's gateway view until all have settled or `bound_s` passed; the last
    views and the time it took."""
    return _poll_views(stack, videos, tokens, bound_s, lambda _, view: settled(view))


def wait_caught_up(
    stack: LocalStack,
    expected: Mapping[str, tuple[str, str]],
    tokens: Mapping[str, dict[str, str]],
    bound_s: float,
) -> dict[str, View]:
    """Re-read views the log is ahead of (video -> (user, the log's status)) until each shows
    that status, settled, or `bound_s` passed; the last views. A delete accepted (202) or cut
    off just before the load stopped may land after its video already looked settled."""

    def caught_up(vid: str, view: View) -> bool:
        return settled(view) and view is not None and view["status"] == expected[vid][1]

    videos = {vid: user for vid, (user, _) in expected.items()}
    return _poll_views(stack, videos, tokens, bound_s, caught_up)[0]


async def _log(dsn: str) -> list[LogEvent]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT position, event_id, stream_id, stream_version, event_type, data::text,"
            " metadata->>'causation_id' FROM events ORDER BY position"
        )
    finally:
        await conn.close()
    return [LogEvent(r[0], str(r[1]), r[2], r[3], r[4], r[6], json.loads(r[5])) for r in rows]


def event_log(stack: LocalStack) -> list[LogEvent]:
    return asyncio.run(_log(stack.postgres.dsn_for("openv_jobs")))


async def _topic(bootstrap: str, topic: str) -> list[TopicRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[TopicRecord] = []
        deadline = time.monotonic() + 120
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: stuck before its end offsets {ends}")
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, batch in batches.items():
                for msg in batch:
                    value = json.loads(msg.value)
                    data = value.get("data") or {}
                    records.append(
                        TopicRecord(
                            partition=tp.partition,
                            offset=msg.offset,
                            key=msg.key.decode() if msg.key else None,
                            event_id=value["event_id"],
                            type=value["type"],
                            stream_id=value.get("stream_id"),
                            version=value.get("stream_version"),
                            video_id=data.get("video_id"),
                        )
                    )
        return records
    finally:
        await consumer.stop()


def topic(stack: LocalStack, name: str) -> list[TopicRecord]:
    """Every record of a topic, all partitions, from the beginning."""
    return asyncio.run(_topic(stack.kafka.bootstrap, name))


def video_events(stack: LocalStack) -> list[TopicRecord]:
    return topic(stack, topics.VIDEO_EVENTS)


def storage_facts(stack: LocalStack) -> list[TopicRecord]:
    return topic(stack, topics.STORAGE_EVENTS)


def sim_jobs(stack: LocalStack) -> list[SimJob]:
    jobs = httpx.get(f"{stack.sim_url}/admin/jobs", timeout=30.0).json()["jobs"]
    # Webhook times are wall-clock, creation times monotonic: one offset maps the first.
    wall_to_monotonic = time.monotonic() - time.time()
    return [
        SimJob(
            job["id"],
            (job["input"].get("openv") or {}).get("video_id"),
            job["created_at"],
            min(
                (
                    r["at"] + wall_to_monotonic
                    for r in job["webhook_log"]
                    if 200 <= (r["http_status"] or 0) < 300
                ),
                default=None,
            ),
        )
        for job in jobs
    ]


def object_keys(stack: LocalStack) -> list[str]:
    client = stack.s3.client()
    return [
        obj.object_name for obj in client.list_objects(BUCKET, prefix="videos/", recursive=True)
    ]


async def _rows(dsn: str, table: str, key: str) -> Rows:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT * FROM {table}")  # noqa: S608 (constants)
    finally:
        await conn.close()
    return {str(row[key]): dict(row) for row in rows}


async def _projector_caught_up(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        done = await conn.fetchval("SELECT position FROM checkpoints WHERE name = 'videos'")
    finally:
        await conn.close()
    return bool(done is not None and done >= head)


def projections(stack: LocalStack) -> tuple[Rows, Rows, Rows, Rows]:
    """Live `videos` and `user_usage`, and the same rebuilt from the log beside them
    (`python -m openv_jobs rebuild`, without --swap), once the projector has caught up."""
    dsn = stack.postgres.dsn_for("openv_jobs")
    deadline = time.monotonic() + 60
    while not asyncio.run(_projector_caught_up(dsn)):
        if time.monotonic() > deadline:
            raise TimeoutError("the videos projector did not catch up with the log in 60 s")
        time.sleep(0.5)
    subprocess.run(
        [sys.executable, "-m", "openv_jobs", "rebuild"],
        env=stack.service_env("jobs"),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return (
        asyncio.run(_rows(dsn, "videos", "video_id")),
        asyncio.run(_rows(dsn, "videos_rebuild", "video_id")),
        asyncio.run(_rows(dsn, "user_usage", "user_id")),
        asyncio.run(_rows(dsn, "user_usage_rebuild", "user_id")),
    )
