"""One user's hostile input cannot stop anybody else's videos.

Hostile prompts are refused at the gateway's door; the same poison published straight onto
the commands topic (an older gateway, a rogue producer) is dead-lettered by the jobs service
with its reason, and the creates of 12 other users queued behind it on every partition are
still decided at once.
"""

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from openv_contracts import Envelope, topics
from openv_contracts.commands import RequestVideo
from openv_contracts.video import VideoParams
from openv_localstack.stack import LocalStack
from tests.e2e.support import SMALL, Auth

pytestmark = pytest.mark.e2e

HOSTILE_PROMPTS = ["a\u0000b", "\u0000", "fox\u0007", "fox\u001b[31m", "fox\u0085", "\u009b"]


async def _publish_poison(bootstrap: str, user: str) -> list[str]:
    """A RequestVideo whose prompt Postgres cannot store (NUL in jsonb) and a record that is
    not even JSON, on every partition of the commands topic: whoever's commands share the
    partition are queued behind them. Returns the poison envelopes' ids."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    ids: list[str] = []
    try:
        partitions = sorted(await producer.partitions_for(topics.COMMANDS))
        for partition in partitions:
            envelope = Envelope.wrap(
                RequestVideo(
                    video_id=uuid.uuid4(),
                    prompt=f"poison \u0000 {partition}",
                    params=VideoParams(seed=1, **SMALL),
                ),
                user_id=user,
            )
            ids.append(str(envelope.event_id))
            headers = [("event-type", envelope.type.encode())]
            await producer.send_and_wait(
                topics.COMMANDS,
                envelope.model_dump_json().encode(),
                key=user.encode(),
                partition=partition,
                headers=headers,
            )
            await producer.send_and_wait(
                topics.COMMANDS, b"\xff not json", key=user.encode(), partition=partition
            )
    finally:
        await producer.stop()
    return ids


async def _dead_letters(bootstrap: str, wanted: set[str]) -> list[dict[str, Any]]:
    """The dead-letter records of the jobs service whose message is one of `wanted`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        partition = TopicPartition(topics.DEAD_LETTER, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(found) < len(wanted):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    dead = json.loads(record.value)
                    if dead["service"] != "jobs":
                        continue
                    try:
                        event_id = json.loads(dead["value"])["event_id"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    if event_id in wanted:
                        found.append(dead)
    finally:
        await consumer.stop()
    return found


def test_hostile_prompts_are_refused_and_poison_stops_nobody_else(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    mallory = f"mallory-{uuid.uuid4()}"
    for prompt in HOSTILE_PROMPTS:
        refused = api.post("/v1/videos", json={"prompt": prompt, **SMALL}, headers=auth(mallory))
        assert refused.status_code == 422, (prompt, refused.text)
        problem = refused.json()
        assert problem["code"] == "invalid_parameter"
        assert [e["field"] for e in problem["errors"]] == ["prompt"]

    poison = asyncio.run(_publish_poison(stack.kafka.bootstrap, mallory))

    # 12 other users, whose commands land behind the poison on every partition.
    started = time.monotonic()
    decided: dict[str, str] = {}
    for n in range(12):
        user = f"user-{n}-{uuid.uuid4()}"
        created = api.post(
            "/v1/videos", json={"prompt": f"a fox, take {n}", **SMALL}, headers=auth(user)
        )
        assert created.status_code == 202, created.text
        decided[user] = created.json()["status"]
    elapsed = time.monotonic() - started
    assert all(status == "queued" for status in decided.values()), decided
    # Each create waits for its decision; a stuck partition would make some answer `pending`
    # after the whole decision budget (5 s).
    assert elapsed < 12 * 5

    dead = asyncio.run(_dead_letters(stack.kafka.bootstrap, set(poison)))
    assert sorted(json.loads(d["value"])["event_id"] for d in dead) == sorted(poison)
    for record in dead:
        assert record["topic"] == topics.COMMANDS
        assert isinstance(record["offset"], int)
        assert record["reason"], record
