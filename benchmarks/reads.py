"""Benchmark of the gateway's reads and live status (a script, not a test), with the whole
local stack running (issue #23), beside a bare FastAPI hello-world measured in the same run:

1. `wrk` against the hello-world, `GET /v1/videos/{id}` of a known video and `GET /v1/videos`
   (a page of 20), each with its ratio to the hello-world;
2. for each N of `--streams`: N status streams (`GET /v1/videos/{id}/stream`) opened at once
   over N/10 videos, one user per video (benchmarks/stream_round.py): open errors by status,
   the gateway's RSS per open stream, then every video cancelled through the gateway and the
   time from the change to the `cancelled` event's arrival on every stream (arrival minus the
   event's `updated_at`, and minus the moment its video's cancel was sent; one clock).

    .venv/bin/python -m benchmarks.reads [--duration 10] [--streams 1000,5000,10000]

(as a module, from the repository root). Needs `wrk`. The gateway's per-user limits (request
rate, long-lived requests open at once) are raised through its settings for the run; the
RunPod simulator keeps jobs queued, so the videos stay in flight until cancelled.
"""

import argparse
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop
from benchmarks.bench_stack import bench_stack, hello_world, wait_until_quiet
from benchmarks.raw_http import BODY
from benchmarks.stream_round import stream_round
from benchmarks.wrk import GET_LUA, fmt, require_wrk, run_wrk

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token

#: The owner's videos, so that the list answers a full default page.
OWNED = 20


def raise_fd_limit(streams: int) -> None:
    """Room for every stream's socket here and in the gateway (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, streams + 2048))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < streams + 1024:
        print(f"warning: open files limited to {wanted} for {streams} streams", file=sys.stderr)


def own_videos(gateway: str, token: str) -> str:
    """Create the owner's videos; the first one's id."""
    ids: list[str] = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(OWNED):
            created = client.post(f"{gateway}/v1/videos", json=BODY)
            assert created.status_code == 202, created.text
            ids.append(created.json()["id"])
    return ids[0]


def live_figures(stack: LocalStack) -> dict[str, float]:
    """The gateway's live view once a round's streams have ended (its /metrics): nothing may
    still be watched, and its reads of the jobs service so far."""
    text = httpx.get(f"{stack.admin_url_of('gateway')}/metrics", timeout=5).text
    names = ("openv_gateway_watched_videos", "openv_gateway_known_videos")
    wanted = {*names, "openv_gateway_video_loads_total"}
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name in wanted
    }


def fmt_ms(values: list[float | None]) -> str:
    return " / ".join("n/a" if v is None else f"{v:,.0f}" for v in values) + " ms"


def fmt_round(r: dict[str, Any]) -> str:
    return (
        f"{r['opened']:,} of {r['streams']:,} opened ({r['videos']:,} videos) in "
        f"{r['open_s']:.1f} s; open errors {r['open_errors'] or 0}; "
        f"RSS per stream {r['rss_per_stream_kb']:.1f} KB (gateway {r['rss_before_mb']:.0f} MB "
        f"before, {r['gateway_fds']:,} fds open); cancels {r['cancel_statuses']} sent in "
        f"{r['cancel_send_s']:.1f} s; `cancelled` arrived on {r['arrived']:,} "
        f"({r['unfinished']:,} streams unfinished); p50/p99 from the event: "
        f"{r['paced_videos']} videos one at a time {fmt_ms(r['paced_from_event_ms'])}, "
        f"the others all at once {fmt_ms(r['from_event_ms'])} (from its cancel's send "
        f"{fmt_ms(r['from_send_ms'])}); after it the gateway watched "
        f"{r['after'].get('openv_gateway_watched_videos', 'n/a')} videos, kept "
        f"{r['after'].get('openv_gateway_known_videos', 'n/a')}, had read "
        f"{r['after'].get('openv_gateway_video_loads_total', 'n/a')} from the jobs service"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--streams", default="1000,5000,10000", help="streams per round")
    parser.add_argument("--per-video", type=int, default=10, help="streams per video")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per round phase")
    parser.add_argument(
        "--cold",
        default="10000",
        help="streams per round opened right after a gateway restart (it knows no video)",
    )
    args = parser.parse_args()
    wrk = require_wrk()
    rounds = [int(n) for n in args.streams.split(",") if n]
    cold = [int(n) for n in args.cold.split(",") if n]
    raise_fd_limit(max(rounds + cold, default=0))

    with tempfile.TemporaryDirectory(prefix="openv-bench-reads-") as tmp:
        root = Path(tmp)
        stack = bench_stack(root, {"OPENV_MAX_OPEN_PER_USER": "1000000"})
        print("starting the local stack and the hello-world baseline ...", flush=True)
        stack.start()
        try:
            with hello_world(root) as hello_url:
                gateway = stack.gateway_url
                owner = make_token("reads-owner", ttl_s=7200)
                video_id = own_videos(gateway, owner)
                env = {"BENCH_TOKEN": owner}
                runs: dict[str, dict[str, Any]] = {}
                targets = {
                    "hello-world": hello_url + "/",
                    "GET /v1/videos/{id}": f"{gateway}/v1/videos/{video_id}",
                    "GET /v1/videos": f"{gateway}/v1/videos",
                }
                for url in targets.values():  # warm-up, not reported
                    run_wrk(wrk, url, 2, args.connections, GET_LUA, env)
                for name, url in targets.items():
                    wait_until_quiet()
                    print(f"wrk {args.duration}s x {args.connections} connections: {name} ...")
                    runs[name] = run_wrk(wrk, url, args.duration, args.connections, GET_LUA, env)
                    print(f"  {fmt(runs[name])}", flush=True)
                results, cold_results = {}, {}
                pid = stack.processes["gateway"].pid
                assert pid is not None
                port = stack.ports["gateway"]
                for n in rounds:
                    wait_until_quiet()
                    print(f"{n:,} streams ...", flush=True)
                    results[n] = uvloop.run(
                        stream_round("127.0.0.1", port, pid, n, args.per_video, args.timeout)
                    )
                    results[n]["after"] = live_figures(stack)
                    print(f"  {fmt_round(results[n])}", flush=True)

                def restart() -> int:
                    stack.restart_service("gateway")
                    pid = stack.processes["gateway"].pid
                    assert pid is not None
                    return pid

                for n in cold:
                    wait_until_quiet()
                    print(f"{n:,} streams opened on a restarted gateway ...", flush=True)
                    cold_results[n] = uvloop.run(
                        stream_round(
                            "127.0.0.1", port, pid, n, args.per_video, args.timeout, restart
                        )
                    )
                    cold_results[n]["after"] = live_figures(stack)
                    print(f"  {fmt_round(cold_results[n])}", flush=True)
        finally:
            stack.stop()

    base = runs["hello-world"]["rps"]
    print("\n=== reads benchmark ===")
    for name, result in runs.items():
        print(f"{name:<20} {fmt(result)}   ratio {result['rps'] / base:.3f}")
    print("(target: GET of a known video >= 0.5x the hello-world)")
    for n, result in results.items():
        print(f"{n:>6,} streams: {fmt_round(result)}")
    for n, result in cold_results.items():
        print(f"{n:>6,} streams on a restarted gateway: {fmt_round(result)}")
    print("(target at 10,000: all opened, 0 errors, <= 30 KB per stream, p99 <= 250 ms)")


if __name__ == "__main__":
    # SIGTERM (e.g. `timeout`) must still stop the stack: turn it into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.monotonic()
    main()
    print(f"(took {time.monotonic() - start:.0f} s)")
