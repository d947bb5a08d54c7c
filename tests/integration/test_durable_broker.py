"""The local broker on S3 (the stack's default): topics, records and a consumer group's
committed offsets survive a stop and a SIGKILL of the broker, restarted on the same port."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from openv_localstack.ports import free_port
from openv_localstack.servers import SeaweedS3, TansuBroker

pytestmark = pytest.mark.integration

TOPIC = "orders"
GROUP = "durable-test"
#: Offsets the group commits before the crash, per partition (of 6 records each).
COMMITTED = {0: 2, 1: 5}


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[SeaweedS3]:
    with SeaweedS3(
        tmp_path / "s3", free_port(), "openv-test", "openv-test-secret-0123456789"
    ) as server:
        yield server


@pytest.fixture
def broker(tmp_path: Path, s3: SeaweedS3) -> Iterator[TansuBroker]:
    with TansuBroker(free_port(), tmp_path / "kafka", s3=s3) as kafka:
        yield kafka


def member(kafka: TansuBroker, group: str | None = GROUP) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *([TOPIC] if group else []),
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        session_timeout_ms=2000,  # Tansu admits a new member once the last one's session ends
        heartbeat_interval_ms=300,
    )


async def read(consumer: AIOKafkaConsumer, expected: int, settle_s: float = 0.5) -> list[str]:
    """Records as "partition:value" until `expected` came and `settle_s` passed quietly."""
    got: list[str] = []
    deadline = time.monotonic() + 20
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=100)
        records = [r for rs in batches.values() for r in rs]
        got += [f"{r.partition}:{r.value.decode()}" for r in records]
        if records:
            quiet_since = time.monotonic()
        elif len(got) >= expected and time.monotonic() - quiet_since > settle_s:
            break
    return sorted(got)


async def produce(kafka: TansuBroker, per_partition: int, start: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(start, start + per_partition):
            for partition in (0, 1):
                await producer.send_and_wait(TOPIC, f"m{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def commit_offsets(kafka: TansuBroker) -> None:
    consumer = member(kafka)
    await consumer.start()
    try:
        assert len(await read(consumer, 12)) == 12
        await consumer.commit({TopicPartition(TOPIC, p): o for p, o in COMMITTED.items()})
    finally:
        await consumer.stop()


async def assert_survived(kafka: TansuBroker, per_partition: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([TOPIC])
        assert len(described["partitions"]) == 2
    finally:
        await admin.close()

    everything = member(kafka, group=None)
    await everything.start()
    try:
        everything.assign([TopicPartition(TOPIC, p) for p in (0, 1)])
        assert await read(everything, 2 * per_partition) == sorted(
            f"{p}:m{i}" for p in (0, 1) for i in range(per_partition)
        )
    finally:
        await everything.stop()

    # The group resumes where it committed, not at the start or the end.
    resumed = member(kafka)
    await resumed.start()
    try:
        assert await read(resumed, 0) == sorted(
            f"{p}:m{i}" for p, offset in COMMITTED.items() for i in range(offset, per_partition)
        )
        for partition, offset in COMMITTED.items():
            assert await resumed.committed(TopicPartition(TOPIC, partition)) == offset
    finally:
        await resumed.stop()


async def test_records_and_committed_offsets_survive_stop_and_sigkill(
    broker: TansuBroker,
) -> None:
    assert broker.durable
    broker.create_topics({TOPIC: 2})
    await produce(broker, 6)
    await commit_offsets(broker)

    # A clean stop (SIGTERM) and a start on the same port.
    first_pid = broker.pid
    broker.stop()
    broker.start()
    assert broker.pid != first_pid
    await assert_survived(broker, 6)

    # A crash: nothing gets to flush. More records first, acknowledged before the kill.
    await produce(broker, 2, start=6)
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGKILL)
    assert broker.process is not None
    broker.process.stop()  # reaps it; the port is free again
    assert not broker.running
    broker.start()
    await assert_survived(broker, 8)


async def test_an_s3_outage_pauses_the_broker_which_recovers_without_a_restart(
    broker: TansuBroker, s3: SeaweedS3
) -> None:
    """What the fault suite's S3 outage means for a durable broker: writes are refused while
    S3 is away (the services retry them) and work again once it is back."""
    broker.create_topics({TOPIC: 2})
    await produce(broker, 1)
    broker_pid = broker.pid
    s3.stop()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=5000)
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            await asyncio.wait_for(producer.send_and_wait(TOPIC, b"lost?", partition=0), 10)
    finally:
        await producer.stop()
    s3.start()
    await produce(broker, 1, start=1)
    assert broker.running and broker.pid == broker_pid
    everything = member(broker, group=None)
    await everything.start()
    try:
        everything.assign([TopicPartition(TOPIC, p) for p in (0, 1)])
        # Everything acknowledged is there (a refused write may or may not be: like a lost
        # answer, which the producers' retries and the consumers' dedupe cover).
        assert {"0:m0", "0:m1", "1:m0", "1:m1"} <= set(await read(everything, 4))
    finally:
        await everything.stop()
