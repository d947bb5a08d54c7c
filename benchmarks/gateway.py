"""Benchmark of the gateway (a script, not a test), with the whole local stack running.

1. `wrk` against a bare FastAPI hello-world (one uvicorn worker, no access log), started in
   the same run as the baseline;
2. an open-loop load generator at fixed rates of creates (default 20/s, then 200/s) reporting
   latency percentiles measured from each request's scheduled start (no coordinated omission);
3. `wrk` against `GET /v1/videos/{id}` (auth, ownership, a read of the jobs service, presenting);
4. `wrk` against `POST /v1/videos` (auth, validation, publish to Kafka, wait for the jobs
   service's decision through the live feed, read the decided video), each request as the next
   of many distinct users (benchmarks/gateway_create.lua), per-user limits raised.

The open-loop runs come before wrk's creates, and every run prints how many records the
broker's topics hold: the local broker (Tansu, memory engine) gets slower as its topics grow
(benchmarks/broker_growth.py measures it), so a figure depends on the creates before it.

    .venv/bin/python -m benchmarks.gateway [--duration 10] [--connections 16] [--rates 20,200]

(as a module, from the repository root: it shares benchmarks/bench_stack.py, raw_http.py and
wrk.py with benchmarks/reads.py)

Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
The RunPod simulator is told to keep jobs queued for an hour so rendering MP4s does not compete
for the CPU; everything else (jobs, relay, bridge submitting to the simulator, storage) runs.
"""

import argparse
import asyncio
import collections
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from benchmarks.bench_stack import bench_stack, hello_world, process_cpu, wait_until_quiet
from benchmarks.raw_http import BODY, Connection, create_request
from benchmarks.sse_reader import percentile
from benchmarks.wrk import CREATE_LUA, GET_LUA, fmt, require_wrk, run_wrk

from openv_contracts import topics
from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token


def write_tokens(path: Path, users: int) -> None:
    """One token per line, for the create script to hand out round-robin."""
    path.write_text("\n".join(make_token(f"bench-{i}", ttl_s=7200) for i in range(users)) + "\n")


class CpuPerCreate:
    """Each stack process's CPU per create over an open-loop run and the backlog after it
    (until the stack is quiet), minus what the process uses idle (measured just before)."""

    IDLE_S = 3.0

    def __init__(self, stack: LocalStack) -> None:
        pids = {name: process.pid for name, process in stack.processes.items()}
        pids |= {"postgres": stack.postgres.pid, "tansu": stack.kafka.pid, "s3": stack.s3.pid}
        self.processes = {
            name: psutil.Process(pid) for name, pid in pids.items() if pid is not None
        }

    def _now(self) -> dict[str, float]:
        return {name: process_cpu(process) for name, process in self.processes.items()}

    def start(self) -> None:
        before = self._now()
        time.sleep(self.IDLE_S)
        self.started_at, self.start_cpu = time.monotonic(), self._now()
        self.idle = {n: (self.start_cpu[n] - before[n]) / self.IDLE_S for n in before}

    def finish(self, creates: int) -> dict[str, float]:
        wait_until_quiet()
        elapsed, now = time.monotonic() - self.started_at, self._now()
        return {
            name: 1000 * (now[name] - self.start_cpu[name] - self.idle[name] * elapsed) / creates
            for name in now
        }


def broker_records(bootstrap: str) -> int:
    """Records in the stack's topics (the sum of their partitions' end offsets)."""

    async def count() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic, count in topics.DEFAULT_PARTITIONS.items()
                for partition in range(count)
            ]
            return sum((await consumer.end_offsets(partitions)).values())
        finally:
            await consumer.stop()

    return asyncio.run(count())


async def fixed_rate(
    url: str, rate: float, duration_s: float, users: int, max_in_flight: int = 200
) -> dict[str, Any]:
    """Open-loop creates at `rate`/s; latency counted from each request's scheduled time.

    A request due while `max_in_flight` are outstanding is not sent and counted as dropped,
    so an overloaded run stays bounded instead of piling up connections.
    """
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80
    requests = [
        create_request(f"{host}:{port}", make_token(f"rate-{i}", ttl_s=7200)) for i in range(users)
    ]
    total = int(rate * duration_s)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    dropped = 0
    in_flight: set[asyncio.Task[None]] = set()
    # Taken oldest first, so every connection stays in use: one left idle past the server's
    # keep-alive timeout (uvicorn: 5 s) would be closed under it and fail its next request.
    idle = collections.deque([await Connection.open(host, port) for _ in range(20)])
    loop = asyncio.get_running_loop()

    async def one(i: int, scheduled: float) -> None:
        connection = idle.popleft() if idle else None
        try:
            if connection is None:
                connection = await Connection.open(host, port)
            status, _ = await connection.request(requests[i % users])
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if connection is not None:
                connection.close()
            return
        latencies.append(loop.time() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1
        idle.append(connection)

    start = loop.time() + 0.1
    for i in range(total):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        if len(in_flight) >= max_in_flight:
            dropped += 1
            continue
        task = asyncio.create_task(one(i, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    elapsed = loop.time() - start
    if in_flight:
        _, late = await asyncio.wait(set(in_flight), timeout=35)
        for task in late:
            task.cancel()
        if late:
            errors["unanswered after 35 s"] = len(late)
    for connection in idle:
        connection.close()
    latencies.sort()

    def pct(p: float) -> float | None:
        value = percentile(latencies, p)
        return None if value is None else 1000 * value

    return {
        "requests": total,
        "sent_rate": (total - dropped) / elapsed,
        "dropped": dropped,
        "statuses": statuses,
        "errors": errors,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": 1000 * latencies[-1] if latencies else None,
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else None,
    }


def fmt_cpu(per_create: dict[str, float]) -> str:
    parts = [f"{name} {ms:.2f}" for name, ms in sorted(per_create.items(), key=lambda i: -i[1])]
    return f"{sum(per_create.values()):.2f} ms ({', '.join(parts)})"


def fmt_rate(result: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        value = result[key]
        return "n/a" if value is None else f"{value:.1f} ms"

    return (
        f"sent {result['sent_rate']:.0f}/s, p50 {ms('p50_ms')}, p90 {ms('p90_ms')}, "
        f"p99 {ms('p99_ms')}, max {ms('max_ms')}, statuses {result['statuses']}, "
        f"errors {result['errors'] or 0}, not sent (over {200} in flight) {result['dropped']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--rates", default="20,200", help="fixed create rates (/s) for the open-loop runs"
    )
    parser.add_argument("--rate-duration", type=float, default=15.0)
    parser.add_argument("--users", type=int, default=5000, help="distinct users for creates")
    args = parser.parse_args()
    wrk = require_wrk()

    with tempfile.TemporaryDirectory(prefix="openv-bench-gw-") as tmp:
        root = Path(tmp)
        stack = bench_stack(root)
        print("starting the local stack and the hello-world baseline ...", flush=True)
        stack.start()
        try:
            with hello_world(root) as hello_url:
                gateway = stack.gateway_url
                owner_token = make_token("bench-owner", ttl_s=7200)
                created = httpx.post(
                    f"{gateway}/v1/videos",
                    json=BODY,
                    headers={"Authorization": f"Bearer {owner_token}"},
                    timeout=30,
                )
                assert created.status_code == 202, created.text
                video_id = created.json()["id"]
                tokens = root / "tokens.txt"
                write_tokens(tokens, args.users)
                common = {"BENCH_TOKEN": owner_token, "BENCH_TOKENS": str(tokens)}

                runs: dict[str, dict[str, Any]] = {}
                # Warm-up (connection set-up, first JWKS/imports, Kafka metadata), not reported.
                run_wrk(wrk, hello_url + "/", 2, args.connections, GET_LUA, common)
                asyncio.run(fixed_rate(gateway, 50, 3, args.users))

                def wrk_run(name: str, url: str, script: Path) -> None:
                    wait_until_quiet()
                    records = broker_records(stack.kafka.bootstrap)
                    print(
                        f"wrk {args.duration}s x {args.connections} connections: {name} "
                        f"(broker topics hold {records:,} records) ..."
                    )
                    runs[name] = run_wrk(wrk, url, args.duration, args.connections, script, common)
                    print(f"  {fmt(runs[name])}", flush=True)

                wrk_run("hello-world", hello_url + "/", GET_LUA)
                steady: dict[float, dict[str, Any]] = {}
                cpu_by_rate: dict[float, dict[str, float]] = {}
                for rate in [float(r) for r in args.rates.split(",")]:
                    quiet_s, used = wait_until_quiet()
                    records = broker_records(stack.kafka.bootstrap)
                    print(
                        f"open loop: {rate:g} creates/s for {args.rate_duration:g} s "
                        f"(after {quiet_s:.0f} s for the stack to go quiet: {used:.2f} cores; "
                        f"broker topics hold {records:,} records) ..."
                    )
                    cpu = CpuPerCreate(stack)
                    cpu.start()
                    steady[rate] = asyncio.run(
                        fixed_rate(gateway, rate, args.rate_duration, args.users)
                    )
                    print(f"  {fmt_rate(steady[rate])}", flush=True)
                    per_create = cpu.finish(steady[rate]["requests"])
                    cpu_by_rate[rate] = per_create
                    print(f"  CPU per create: {fmt_cpu(per_create)}", flush=True)
                wrk_run("GET /v1/videos/{id}", f"{gateway}/v1/videos/{video_id}", GET_LUA)
                wrk_run("POST /v1/videos", f"{gateway}/v1/videos", CREATE_LUA)
                ready = httpx.get(f"{stack.admin_url_of('gateway')}/readyz", timeout=10).json()
        finally:
            stack.stop()

    base = runs["hello-world"]["rps"]
    get = runs["GET /v1/videos/{id}"]
    create = runs["POST /v1/videos"]
    accepted = create["statuses"].get("202", 0) / create["duration_s"]
    print("\n=== gateway benchmark ===")
    for name, result in runs.items():
        print(f"{name:<22} {fmt(result)}")
    print(f"GET / hello-world ratio:    {get['rps'] / base:.3f}")
    print(f"POST / hello-world ratio:   {create['rps'] / base:.3f}")
    print(f"accepted creates/s:         {accepted:,.0f}  (target >= 1,000)")
    for rate, result in steady.items():
        print(f"fixed rate {rate:>5g}/s: {fmt_rate(result)}  (target at 200/s: p99 <= 50 ms)")
        print(f"   CPU per create: {fmt_cpu(cpu_by_rate[rate])}")
    print(f"gateway readiness after the run: {ready}")


if __name__ == "__main__":
    # SIGTERM (e.g. `timeout`) must still stop the stack: turn it into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.monotonic()
    main()
    print(f"(took {time.monotonic() - start:.0f} s)")
