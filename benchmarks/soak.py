"""A soak of the local stack (a script, not a test): each process's memory idle, under a steady
mixed load for `--minutes`, and idle again afterwards.

Starts the whole local stack as `python3 dev.py up` does (span files on; `--broker-storage`),
with per-user limits raised so the load is never refused. Then:

1. idle: `--idle-s` seconds after start-up, RSS sampled every `--sample-s`;
2. load: for `--minutes`, `--rate` videos a second, each as the next of `--users` users
   (tokens from openv_localstack.tokens): create, poll every `--poll-s` until terminal, then
   delete (every fourth video is kept); through the gateway's REST API;
3. idle again: the load's last videos finish, then `--idle-s` seconds more.

RSS is VmRSS from /proc/<pid>/status summed over each process and its children (Postgres's
backends share its buffers, so its sum overstates what it holds). The table shows each
process's idle RSS (median), RSS when the load's warm-up (`--warmup-s`) ends, at the load's
end, idle afterwards, the growth over the load after its warm-up (and its trend: a least
squares slope over those samples), and whether idle RSS is within the 120 MB goal.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 1] [--users 8]
"""

import argparse
import asyncio
import collections
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from openv_localstack.stack import LocalStack, StackOptions
from openv_localstack.tokens import make_token

GOAL_MB = 120.0
TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}
#: Small renders keep the simulator's CPU (PyAV encoding) from dominating the machine.
VIDEO = {"width": 384, "height": 384, "num_frames": 13, "steps": 10}
SERVERS = ("postgres", "kafka", "s3")


def vm_rss_kib(pid: int) -> int:
    """VmRSS of one process, 0 if it is gone (or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and all its descendants, in MB (10^6 bytes)."""
    try:
        pids = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(vm_rss_kib(p) for p in pids) * 1024 / 1e6


def tracked_pids(stack: LocalStack) -> dict[str, int]:
    pids = {name: proc.pid for name, proc in stack.processes.items() if proc.pid is not None}
    for name in SERVERS:
        pid = stack.server(name).pid
        if pid is not None:
            pids[name] = pid
    return pids


class Sampler:
    """RSS of every tracked process every `interval` seconds, tagged with the phase."""

    def __init__(self, pids: dict[str, int], interval: float) -> None:
        self.pids = pids
        self.interval = interval
        self.phase = "idle"
        self.samples: list[tuple[str, float, dict[str, float]]] = []  # phase, time, name -> MB

    async def run(self) -> None:
        while True:
            sample = {name: tree_rss_mb(pid) for name, pid in self.pids.items()}
            self.samples.append((self.phase, time.monotonic(), sample))
            await asyncio.sleep(self.interval)

    def of(self, phase: str, since: float = 0.0) -> list[tuple[float, dict[str, float]]]:
        return [(t, s) for p, t, s in self.samples if p == phase and t >= since]


class Load:
    """Open-loop video lifecycles: create, poll to a terminal state, delete."""

    def __init__(self, gateway: str, users: int, poll_s: float) -> None:
        self.client = httpx.AsyncClient(base_url=gateway, timeout=30.0)
        self.tokens = [make_token(f"soak-user-{i}", ttl_s=24 * 3600) for i in range(users)]
        self.poll_s = poll_s
        self.statuses: collections.Counter[str] = collections.Counter()  # "POST 202", ...
        self.outcomes: collections.Counter[str] = collections.Counter()  # terminal states
        self.errors: collections.Counter[str] = collections.Counter()
        self.created = 0

    async def call(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        response = await self.client.request(method, url, headers=headers, **kwargs)
        self.statuses[f"{method} {response.status_code}"] += 1
        return response

    async def lifecycle(self, n: int) -> None:
        token = self.tokens[n % len(self.tokens)]
        try:
            created = await self.call(
                "POST", "/v1/videos", token, json={"prompt": f"soak {n}", **VIDEO}
            )
            if created.status_code != 202:
                return
            video = created.json()
            url = f"/v1/videos/{video['id']}"
            deadline = time.monotonic() + 300
            while video["status"] not in TERMINAL and time.monotonic() < deadline:
                await asyncio.sleep(self.poll_s)
                polled = await self.call("GET", url, token)
                if polled.status_code == 200:
                    video = polled.json()
            self.outcomes[video["status"] if video["status"] in TERMINAL else "unfinished"] += 1
            if n % 4:
                await self.call("DELETE", url, token)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1

    async def drive(self, rate: float, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while loop.time() - started < seconds:
            task = asyncio.create_task(self.lifecycle(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - loop.time()))
        self.created = n
        if tasks:
            await asyncio.wait(tasks)


def slope_mb_per_10min(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return float("nan")
    times = [t for t, _ in points]
    values = [v for _, v in points]
    return statistics.linear_regression(times, values).slope * 600


async def soak(stack: LocalStack, args: argparse.Namespace) -> None:
    sampler = Sampler(tracked_pids(stack), args.sample_s)
    sampling = asyncio.create_task(sampler.run())
    print(f"idle for {args.idle_s:.0f} s ...", flush=True)
    await asyncio.sleep(args.idle_s)
    load = Load(stack.gateway_url, args.users, args.poll_s)
    sampler.phase = "load"
    load_started = time.monotonic()
    print(f"load: {args.rate:g} videos/s for {args.minutes:g} min ...", flush=True)
    await load.drive(args.rate, args.minutes * 60)
    sampler.phase = "drain"
    print(f"idle again for {args.idle_s:.0f} s ...", flush=True)
    await asyncio.sleep(args.idle_s)  # sampled as "drain": lifecycles already ended
    sampler.phase = "after"
    await asyncio.sleep(args.sample_s * 3)
    sampling.cancel()
    await load.client.aclose()

    idle = sampler.of("idle", since=sampler.samples[0][1])
    loaded = sampler.of("load", since=load_started + args.warmup_s)
    after = sampler.of("after") or sampler.of("drain")
    print(
        f"\n{load.created} videos created ({load.created / (args.minutes * 60):.2f}/s), "
        f"terminal states {dict(load.outcomes)}, responses {dict(sorted(load.statuses.items()))}"
        f"{', client errors ' + str(dict(load.errors)) if load.errors else ''}"
    )
    print(
        f"\n=== soak: RSS in MB ({args.minutes:g} min at {args.rate:g} videos/s; "
        f"growth = load end - load start after {args.warmup_s:.0f} s warm-up) ==="
    )
    print(
        f"{'process':<14}{'idle':>8}{'start':>8}{'end':>8}{'after':>8}{'growth':>8}"
        f"{'trend/10min':>13}{'after-idle':>12}  idle <= {GOAL_MB:.0f} MB"
    )
    for name in sampler.pids:
        idle_mb = statistics.median(s[name] for _, s in idle)
        start_mb, end_mb = loaded[0][1][name], loaded[-1][1][name]
        after_mb = statistics.median(s[name] for _, s in after)
        trend = slope_mb_per_10min([(t, s[name]) for t, s in loaded])
        kind = "" if name not in SERVERS else " (server)"
        print(
            f"{name:<14}{idle_mb:>8.1f}{start_mb:>8.1f}{end_mb:>8.1f}{after_mb:>8.1f}"
            f"{end_mb - start_mb:>+8.1f}{trend:>+13.1f}{after_mb - idle_mb:>+12.1f}  "
            f"{'yes' if idle_mb <= GOAL_MB else 'NO'}{kind}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=1.0, help="videos created per second")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--poll-s", type=float, default=1.0, help="poll interval per video")
    parser.add_argument("--idle-s", type=float, default=60.0, help="idle phases' length")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="load before 'start'")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument(
        "--broker-storage", choices=("memory", "s3"), default="memory", help="as dev.py up's"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openv-soak-") as tmp:
        stack = LocalStack(
            StackOptions(
                root=Path(tmp) / "stack",
                broker_storage=args.broker_storage,
                service_env={
                    "OPENV_RATE_LIMIT_PER_S": "1000",
                    "OPENV_RATE_LIMIT_BURST": "1000",
                    "OPENV_MAX_ACTIVE_JOBS": "1000",
                    "OPENV_QUOTA_SECONDS": "1000000000",
                },
            )
        )
        print("starting the local stack ...", flush=True)
        stack.start()
        try:
            asyncio.run(soak(stack, args))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
