"""How the local broker (Tansu, memory engine) slows down as a topic grows (a script, not a
test).

Starts Tansu, then, at growing topic sizes, sends one record at a time and waits for a
consumer (10 ms fetch wait, as the services on a request's path) to read it: the broker's
CPU per hop and the hop's latency, against the empty topic measured in the same run.

    .venv/bin/python benchmarks/broker_growth.py [--sizes 0,20000,40000,80000] [--hops 200]

Why it matters: the gateway benchmark's figures depend on how many records the stack's
topics hold when it runs (a create writes four: command, two video events, one RunPod fact).
Apache Kafka, which production uses, finds a fetch's offset in an index; this does not.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from openv_localstack.ports import free_port
from openv_localstack.servers import TansuBroker

TOPIC = "growth"
FILL_BATCH = 1000
FILL_VALUE = b"x" * 600  # about an envelope's size


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def hops(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, count: int) -> list[float]:
    """`count` records sent one at a time, each read back before the next; their latencies."""
    latencies = []
    for _ in range(count):
        sent = time.monotonic()
        marker = str(sent).encode()
        await (await producer.send(TOPIC, marker, partition=0))
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if any(r.value == marker for records in batches.values() for r in records):
                break
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(0.005)
    return sorted(latencies)


async def measure(
    kafka: TansuBroker, sizes: list[int], count: int
) -> list[tuple[int, float, float]]:
    broker = psutil.Process(kafka.pid)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=kafka.bootstrap,
        group_id="growth",
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    await producer.start()
    await consumer.start()
    results = []
    try:
        filled = 0
        for size in sizes:
            while filled < size:
                sends = [
                    await producer.send(TOPIC, FILL_VALUE, partition=0) for _ in range(FILL_BATCH)
                ]
                await asyncio.gather(*sends)
                filled += FILL_BATCH
            await consumer.getmany(timeout_ms=500)  # read past the filling
            before = cpu_seconds(broker)
            latencies = await hops(producer, consumer, count)
            cpu_ms = 1000 * (cpu_seconds(broker) - before) / count
            p50_ms = 1000 * latencies[len(latencies) // 2]
            results.append((filled, cpu_ms, p50_ms))
            print(
                f"  {filled:>7,} records: broker CPU {cpu_ms:.2f} ms per hop, p50 {p50_ms:.1f} ms"
            )
    finally:
        await producer.stop()
        await consumer.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,20000,40000,80000", help="topic sizes (records)")
    parser.add_argument("--hops", type=int, default=200, help="hops measured per size")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if sizes[0] != 0:
        sizes.insert(0, 0)  # the baseline: an empty topic, in the same run
    with tempfile.TemporaryDirectory(prefix="openv-bench-broker-") as tmp:
        kafka = TansuBroker(free_port(), Path(tmp))
        kafka.start()
        try:
            kafka.create_topics({TOPIC: 1})
            print(f"Tansu, one partition, {args.hops} hops per size:")
            results = asyncio.run(measure(kafka, sizes, args.hops))
        finally:
            kafka.stop()
    base_cpu, base_p50 = results[0][1], results[0][2]
    print("\n=== broker growth (against the empty topic) ===")
    for size, cpu_ms, p50_ms in results:
        print(
            f"{size:>7,} records: CPU per hop {cpu_ms:.2f} ms (x{cpu_ms / base_cpu:.2f}), "
            f"hop p50 {p50_ms:.1f} ms (x{p50_ms / base_p50:.2f})"
        )


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"(took {time.monotonic() - start:.0f} s)", file=sys.stderr)
