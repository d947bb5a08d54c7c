"""The replay fault: every consumer group's committed offsets rewound to the beginning.

Kafka delivers at least once; a consumer that restarts from an older offset (offsets lost with
a broker, a rebalance before a commit, an operator's reset) is handled again from there. This
makes that happen on purpose, for every group at once: the consumer services are stopped
(gracefully: they leave their groups), each group's offsets are set to the start of every
topic, and the services started again. Everything since the beginning is delivered a second
time; the invariants then show whether any consumer acted twice (a second RunPod job, a second
event from one command, ...)."""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from openv_bridge.entrypoints.consumers import GROUP_ID as BRIDGE_GROUP
from openv_contracts import topics
from openv_jobs.entrypoints.consumers import GROUP_ID as JOBS_GROUP
from openv_localstack.stack import LocalStack
from openv_storage.entrypoints.consumers import DELETIONS_GROUP_ID, IMPORTS_GROUP_ID

#: The services that consume in a group, and the groups.
CONSUMERS = ("jobs", "runpod-bridge", "storage")
GROUPS = (JOBS_GROUP, BRIDGE_GROUP, DELETIONS_GROUP_ID, IMPORTS_GROUP_ID)
TOPICS = (topics.COMMANDS, topics.VIDEO_EVENTS, topics.RUNPOD_EVENTS, topics.STORAGE_EVENTS)


async def _rewind(bootstrap: str, group: str) -> int:
    """Join `group` (its services are stopped: once their members are gone, every partition is
    ours), commit each partition's first offset, leave; returns how many records that puts
    back in front of the group."""
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        wanted = {
            TopicPartition(topic, p)
            for topic in TOPICS
            for p in consumer.partitions_for_topic(topic) or ()
        }
        async with asyncio.timeout(120):  # a killed member's session must time out first
            while consumer.assignment() != wanted:
                await consumer.getmany(timeout_ms=200, max_records=1)
        partitions = sorted(wanted)
        first = await consumer.beginning_offsets(partitions)
        before = {tp: await consumer.committed(tp) for tp in partitions}
        await consumer.commit({tp: OffsetAndMetadata(first[tp], "") for tp in partitions})
        after = {tp: await consumer.committed(tp) for tp in partitions}
        if any(after[tp] != first[tp] for tp in partitions):
            raise RuntimeError(f"group {group}: offsets not rewound: {after}")
        return sum((before[tp] or first[tp]) - first[tp] for tp in partitions)
    finally:
        await consumer.stop()


def replay_everything(stack: LocalStack) -> str:
    """Stop the consumers, rewind every group, start them again; what was put back."""
    for service in CONSUMERS:
        stack.stop_service(service)

    async def rewind_all() -> list[int]:
        return [await _rewind(stack.kafka.bootstrap, group) for group in GROUPS]

    try:
        counts = asyncio.run(rewind_all())
    finally:
        for service in CONSUMERS:
            stack.start_service(service)
    return "done (" + ", ".join(f"{g} {n}" for g, n in zip(GROUPS, counts, strict=True)) + ")"
