"""List, then replay, messages from the dead-letter topic to the topic they came from.

A consumer dead-letters a message it can never handle (undecodable, or a permanent error) as
JSON: {"service", "reason", "topic", "partition", "offset", "value"} with the original key;
`value` is the original message (UTF-8 text). Fix the cause first (deploy the fix), then:

    python replay_dead_letter.py                                  # list everything
    python replay_dead_letter.py --service storage --from-offset 120
    python replay_dead_letter.py --service storage --from-offset 120 --replay

Replaying publishes `value` with the original key to `topic` (its partition follows from the
key), where every consumer group of that topic sees it again: consumers are idempotent (each
message's id is recorded with its effect), so that changes nothing twice. The image has this
script at /opt/openv/tools/replay_dead_letter.py; the bootstrap servers default to
$OPENV_KAFKA_BOOTSTRAP. Note the last offset listed: the next run starts after it.
"""

import argparse
import asyncio
import json
import os
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

DEAD_LETTER = TopicPartition("openv.dead-letter", 0)


def selected(dead: dict[str, Any], offset: int, args: argparse.Namespace) -> bool:
    return (
        (args.service is None or dead.get("service") == args.service)
        and (args.topic is None or dead.get("topic") == args.topic)
        and (args.to_offset is None or offset <= args.to_offset)
    )


async def run(args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    count = 0
    try:
        consumer.assign([DEAD_LETTER])
        consumer.seek(DEAD_LETTER, args.from_offset)
        # Read until the topic stays quiet (no end-offset lookup: some brokers get it wrong).
        while batch := await consumer.getmany(DEAD_LETTER, timeout_ms=args.idle_ms):
            for record in batch[DEAD_LETTER]:
                try:
                    dead = json.loads(record.value)
                except ValueError:
                    print(f"{record.offset}: not a dead-letter record, skipped")
                    continue
                if not selected(dead, record.offset, args):
                    continue
                print(
                    f"{record.offset}: {dead['service']} {dead['topic']}"
                    f"[{dead['partition']}]@{dead['offset']}: {dead['reason'][:300]}"
                )
                if args.replay:
                    await producer.send_and_wait(
                        dead["topic"], dead["value"].encode(), key=record.key
                    )
                count += 1
    finally:
        await producer.stop()
        await consumer.stop()
    print(f"{count} message(s) {'replayed' if args.replay else 'selected (use --replay)'}")
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("OPENV_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument("--service", help="only messages this service dead-lettered")
    parser.add_argument("--topic", help="only messages from this topic")
    parser.add_argument("--from-offset", type=int, default=0, help="first dead-letter offset")
    parser.add_argument("--to-offset", type=int, help="last dead-letter offset")
    parser.add_argument("--replay", action="store_true", help="publish them (default: list)")
    parser.add_argument("--idle-ms", type=int, default=3000, help="stop after this much quiet")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
