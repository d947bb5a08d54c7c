"""What the local broker alone costs per create (a script, not a test): the Kafka traffic of
the whole stack at a fixed create rate, with no service running.

Per create the stack writes four records (a command; the accepted and the submitted video
events; the bridge's RunPod fact), read by five consumers with the fetch options the
services use (`openv_infra.kafka.consumer_options`): the jobs service (commands and facts
in one group) and the gateway's live feed on the request path, the bridge and storage
(twice) off it; each group commits after every batch. One process (uvloop) plays every
producer and consumer. The figure is the broker's CPU per create, at each rate against the
first rate, in a fresh broker each time, and against the 2 ms per create that 1,000
creates/s on two cores allows the whole stack.

    .venv/bin/python benchmarks/broker_floor.py [--rates 200,1000] [--duration 10]

The load generator shares the machine's cores with the broker; it prints the rate it kept.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from openv_contracts.topics import COMMANDS, DEFAULT_PARTITIONS, RUNPOD_EVENTS, VIDEO_EVENTS
from openv_infra.kafka import consumer_options
from openv_infra.settings import KafkaSettings
from openv_localstack.ports import free_port
from openv_localstack.servers import TansuBroker

TOPICS = (COMMANDS, VIDEO_EVENTS, RUNPOD_EVENTS)
VALUE = b"x" * 700  # about an envelope's size
HEADERS = [("event-type", b"VideoAccepted"), ("event-id", b"0" * 36)]
SENT_AT = "sent-at"  # monotonic ns at send: the consumers on a request's path time each hop
#: (group, topics, on a request's path); None: the gateway's live feed (no group, assigned).
CONSUMERS: list[tuple[str | None, tuple[str, ...], bool]] = [
    ("jobs", (COMMANDS, RUNPOD_EVENTS), True),
    (None, (VIDEO_EVENTS,), True),
    ("bridge", (VIDEO_EVENTS,), False),
    ("storage-deletions", (VIDEO_EVENTS,), False),
    ("storage-imports", (RUNPOD_EVENTS,), False),
]
BUDGET_MS = 2.0  # 1,000 creates/s on two cores, the whole stack
IDLE_S = 3.0


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def consume(
    consumer: AIOKafkaConsumer,
    group: str | None,
    stop: asyncio.Event,
    hops_ms: list[float] | None = None,
) -> int:
    """Read until `stop`; with `hops_ms`, append each record's produce->consume latency."""
    read = 0
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=500)
        if batches:
            now = time.monotonic_ns()
            for records in batches.values():
                read += len(records)
                if hops_ms is not None:
                    hops_ms.extend((now - sent_at(r.headers)) / 1e6 for r in records)
            if group is not None:
                await consumer.commit()
    return read


def sent_at(headers: Any) -> int:
    return next(int(value) for key, value in headers if key == SENT_AT)


async def one_rate(
    bootstrap: str, pid: int, rate: float, duration_s: float, others: tuple[int, ...] = ()
) -> dict[str, Any]:
    """The broker's CPU per create at `rate` creates/s, the hops' latency on a request's path
    and the CPU of `others` (e.g. the S3 server a durable broker writes to)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    consumers: list[tuple[AIOKafkaConsumer, str | None]] = []
    settings = KafkaSettings()
    for group, names, request_path in CONSUMERS:
        # The fetch waits and sizes the services' consumers use.
        options = consumer_options(settings, request_path=request_path)
        consumer = AIOKafkaConsumer(
            *(names if group else ()),
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=options["fetch_max_wait_ms"],
            fetch_min_bytes=options["fetch_min_bytes"],
        )
        await consumer.start()
        if group is None:
            consumer.assign(
                [TopicPartition(t, p) for t in names for p in range(DEFAULT_PARTITIONS[t])]
            )
        consumers.append((consumer, group))
    # Groups joined and positions set before the clock starts.
    await asyncio.sleep(3.0)
    broker = psutil.Process(pid)
    helpers = [psutil.Process(other) for other in others]
    stop = asyncio.Event()
    hops_ms: list[float] = []
    readers = [
        asyncio.create_task(consume(c, g, stop, hops_ms if request_path else None))
        for (c, g), (_, _, request_path) in zip(consumers, CONSUMERS, strict=True)
    ]
    await asyncio.sleep(1.0)
    # What the consumers' fetches cost with nothing produced, for the figure net of it.
    idle_before = cpu_seconds(broker)
    others_idle_before = sum(cpu_seconds(helper) for helper in helpers)
    await asyncio.sleep(IDLE_S)
    idle_cores = (cpu_seconds(broker) - idle_before) / IDLE_S
    others_idle_cores = (sum(cpu_seconds(h) for h in helpers) - others_idle_before) / IDLE_S
    cpu_before, started = cpu_seconds(broker), time.monotonic()
    helpers_before = sum(cpu_seconds(helper) for helper in helpers)
    measured_from = len(hops_ms)  # hops of the idle phase's stragglers do not count
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Future[Any]] = set()
    total = int(rate * duration_s)
    for i in range(total):
        await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
        key = str(i).encode()
        for topic in (COMMANDS, VIDEO_EVENTS, VIDEO_EVENTS, RUNPOD_EVENTS):  # four a create
            headers = [*HEADERS, (SENT_AT, str(time.monotonic_ns()).encode())]
            sent = await producer.send(topic, VALUE, key=key, headers=headers)
            pending.add(sent)
            sent.add_done_callback(pending.discard)
    kept = total / (time.monotonic() - started)
    await asyncio.gather(*pending)
    await asyncio.sleep(1.0)  # the consumers read the last records
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(broker) - cpu_before
    helpers_cpu = sum(cpu_seconds(helper) for helper in helpers) - helpers_before
    stop.set()
    read = sum(await asyncio.gather(*readers))
    for consumer, _ in consumers:
        await consumer.stop()
    await producer.stop()
    hops = sorted(hops_ms[measured_from:])
    return {
        "hop_p50_ms": percentile(hops, 0.50),
        "hop_p99_ms": percentile(hops, 0.99),
        "others_ms_per_create": 1000 * helpers_cpu / total,
        "others_idle_cores": others_idle_cores,
        "rate": rate,
        "kept": kept,
        "read_per_create": read / total,
        "cpu_ms_per_create": 1000 * cpu / total,
        "net_ms_per_create": 1000 * (cpu - idle_cores * elapsed) / total,
        "idle_cores": idle_cores,
        "cores": cpu / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    results = []
    for rate in [float(r) for r in args.rates.split(",")]:
        with tempfile.TemporaryDirectory(prefix="openv-bench-floor-") as tmp:
            kafka = TansuBroker(free_port(), Path(tmp))
            kafka.start()
            try:
                kafka.create_topics({topic: DEFAULT_PARTITIONS[topic] for topic in TOPICS})
                assert kafka.pid is not None
                result = uvloop.run(one_rate(kafka.bootstrap, kafka.pid, rate, args.duration))
            finally:
                kafka.stop()
        results.append(result)
        print(
            f"{rate:>6,.0f} creates/s (kept {result['kept']:,.0f}/s, "
            f"{result['read_per_create']:.1f} records read per create): broker "
            f"{result['cpu_ms_per_create']:.2f} ms of CPU per create "
            f"({result['net_ms_per_create']:.2f} net of the {result['idle_cores']:.2f} cores "
            f"its idle fetches cost), {result['cores']:.2f} cores",
            flush=True,
        )
    base = results[0]
    print("\n=== broker floor ===")
    for result in results:
        print(
            f"{result['rate']:>6,.0f} creates/s: broker {result['cpu_ms_per_create']:.2f} ms "
            f"per create (x{result['cpu_ms_per_create'] / base['cpu_ms_per_create']:.2f} "
            f"against {base['rate']:,.0f}/s; {result['cpu_ms_per_create'] / BUDGET_MS:.0%} "
            f"of the whole stack's {BUDGET_MS:g} ms budget at 1,000/s; net of idle "
            f"{result['net_ms_per_create']:.2f} ms), {result['cores']:.2f} cores"
        )


if __name__ == "__main__":
    main()
