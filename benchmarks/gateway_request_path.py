"""Benchmark of the gateway's request path alone (a script, not a test; no stack needed).

The gateway app is built as `openv_infra.serve.run_service` builds it (tracing set up with
spans unrecorded, `instrument_app`, `install_metrics`, one uvicorn process, no access log),
with an in-memory jobs service holding one completed video of the benchmark's user, so a
`GET /v1/videos/{id}` is auth, the gateway's view, presenting and encoding, and nothing else.
`wrk` runs against it and against a bare FastAPI hello-world in the same run; the ratio of
the two is the figure issue #23 sets a target for (>= 0.5x).

Variants take one piece out at a time to measure its share of a request:
`--variants full,no-otel,no-metrics,no-bodylimit,no-cors,bare` (CORS is on in `full`, with
one allowed origin, as a deployment serving a web app on another origin has it).

    .venv/bin/python benchmarks/gateway_request_path.py [--duration 5] [--connections 16]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere

from benchmarks.bench_stack import HELLO_APP  # noqa: E402
from benchmarks.wrk import GET_LUA, require_wrk, run_wrk  # noqa: E402

from openv_localstack.ports import free_port  # noqa: E402
from openv_localstack.tokens import make_token  # noqa: E402

SECRET = "bench-request-path-secret-0123456789abcdef"  # noqa: S105 (a local benchmark)
USER = "bench-user"
VIDEO_ID = UUID("0b7f6d2e-8d4e-4b35-9a3e-9f5f8f1b2c3d")
ORIGIN = "https://app.example.com"
VARIANTS = ("full", "no-otel", "no-metrics", "no-bodylimit", "no-cors", "bare")


def _serve_gateway(port: int, variant: str) -> None:
    """The child process: the gateway app as run_service builds it, minus `variant`'s piece."""
    import uvicorn

    app = _build(variant)
    # The lifespan would connect to Kafka: nothing here needs it.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")


def _build(variant: str) -> Any:
    """The gateway app as run_service builds it, minus `variant`'s piece."""
    from openv_contracts.queries import VideoPage, VideoView
    from openv_contracts.video import VideoStatus
    from openv_gateway import main
    from openv_gateway.config import Settings
    from openv_gateway.entrypoints.body_limit import BodyLimitMiddleware
    from openv_infra.metrics import install_metrics
    from openv_infra.serve import tune_gc
    from openv_infra.telemetry import instrument_app, setup_tracing

    now = datetime.now(UTC)
    view = VideoView.model_validate(
        {
            "id": VIDEO_ID,
            "user_id": USER,
            "status": VideoStatus.COMPLETED,
            "progress": 100,
            "prompt": "a red fox running through snow",
            "params": {"width": 384, "height": 384, "num_frames": 7, "seed": 42},
            "duration_seconds": 0.4375,
            "created_at": now,
            "updated_at": now,
            "started_at": now,
            "completed_at": now,
            "object_key": f"videos/{USER}/{VIDEO_ID}/video.mp4",
            "size_bytes": 123456,
            "content_type": "video/mp4",
            "poster_key": f"videos/{USER}/{VIDEO_ID}/poster.jpg",
            "version": 5,
        }
    )

    class MemoryJobs:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
            return view if video_id == VIDEO_ID else None

        async def videos_page(self, *args: Any) -> VideoPage:
            return VideoPage(data=[view] * 10, next_cursor=None)

        async def ready(self) -> bool:
            return True

        async def aclose(self) -> None:
            pass

    main.JobsApi = MemoryJobs  # type: ignore[attr-defined, assignment, misc]
    cors = "" if variant in ("no-cors", "bare") else ORIGIN
    settings = Settings(
        jwt_secret=SECRET, cors_origins=cors, rate_limit_per_s=1e9, rate_limit_burst=10**9
    )
    provider = setup_tracing("gateway")
    app = main.create_app(settings)
    if variant in ("no-bodylimit", "bare"):
        app.user_middleware = [
            m
            for m in app.user_middleware
            if m.cls is not BodyLimitMiddleware  # type: ignore[comparison-overlap]
        ]
    tune_gc()
    if variant not in ("no-otel", "bare"):
        instrument_app(app, provider)
    else:  # FastAPI's own spans would take the instrumentation's place: off as well
        app._telemetry["tracing"] = app._telemetry["operation_spans"] = False
    if variant not in ("no-metrics", "bare"):
        install_metrics(app, "gateway")
    return app


#: Rounds of `--in-process` (each variant's calls are split over them).
ROUNDS = 10


def _in_process(variants: list[str], calls: int) -> None:
    """Each variant's app called directly (no socket, no uvicorn) with the same GET `calls`
    times: the CPU per call, steady to a microsecond, so each piece's cost is its difference
    to `full`. Without uvicorn's own share a call is cheaper than a request, so a piece's
    share printed here is an upper bound of its share of a request."""
    import asyncio

    token = make_token(USER, SECRET, ttl_s=7200)
    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/videos/{VIDEO_ID}",
        "raw_path": f"/v1/videos/{VIDEO_ID}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gw"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run(app: Any, count: int) -> float:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        started = time.process_time()
        for _ in range(count):
            await app(dict(scope_base), receive, send)
        spent = time.process_time() - started
        if set(statuses) != {200}:
            raise SystemExit(f"statuses {sorted(set(statuses))}")
        return spent / count * 1e6

    async def measure() -> dict[str, float]:
        apps = {variant: _build(variant) for variant in variants}
        for app in apps.values():  # warm-up: the token verified, the video loaded and encoded
            await run(app, 500)
        # Round robin, the fastest round of each: what the process does between variants
        # (a collection, the heap growing) lands on every variant alike, and not in a minimum.
        rounds: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(ROUNDS):
            for variant, app in apps.items():
                rounds[variant].append(await run(app, max(1, calls // ROUNDS)))
        return {variant: min(spent) for variant, spent in rounds.items()}

    costs = asyncio.run(measure())
    for variant, us in costs.items():
        print(f"{variant:>12}: {us:.1f} us CPU per call (in-process)")
    full = costs.get("full")
    if full:
        for variant, us in costs.items():
            if variant != "full":
                name = "all middleware" if variant == "bare" else variant[3:]
                print(f"share of {name:>14} in a call: {1 - us / full:.1%} (upper bound)")


def _start(argv: list[str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{argv} did not start")


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _measure(
    wrk: str, url: str, args: argparse.Namespace, token: str | None, pid: int
) -> dict[str, Any]:
    """wrk's figures, and the server's CPU per request: unlike req/s, hardly moved by other
    processes competing for the cores (the server is one process, CPU-bound)."""
    env = {"BENCH_TOKEN": token} if token else {}
    run_wrk(wrk, url, 1, args.connections, GET_LUA, env)  # warm-up
    before = _cpu(pid)
    result: dict[str, Any] = run_wrk(wrk, url, args.duration, args.connections, GET_LUA, env)
    result["cpu_us"] = (_cpu(pid) - before) / max(1, result["requests"]) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--variants", default="full")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="CALLS",
        help="instead of wrk: call each variant's app CALLS times in this process",
    )
    args = parser.parse_args()
    if args.serve:
        _serve_gateway(args.port, args.serve)
        return
    if args.in_process:
        _in_process(args.variants.split(","), args.in_process)
        return
    wrk = require_wrk()
    token = make_token(USER, SECRET, ttl_s=7200)
    port = free_port()
    hello = _start([sys.executable, "-c", HELLO_APP, str(port)], f"http://127.0.0.1:{port}/")
    try:
        base = _measure(wrk, f"http://127.0.0.1:{port}/", args, None, hello.pid)
    finally:
        hello.terminate()
        hello.wait()
    print(
        f"hello-world: {base['rps']:.0f} req/s, p99 {base['p99_ms']:.1f} ms, "
        f"{base['cpu_us']:.0f} us CPU/request"
    )
    results: dict[str, dict[str, float]] = {}
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
        port = free_port()
        argv = [sys.executable, __file__, "--serve", variant, "--port", str(port)]
        gateway = _start(argv, f"http://127.0.0.1:{port}/healthz")
        try:
            url = f"http://127.0.0.1:{port}/v1/videos"
            got = _measure(wrk, f"{url}/{VIDEO_ID}", args, token, gateway.pid)
            listed = _measure(wrk, url, args, token, gateway.pid)
        finally:
            gateway.terminate()
            gateway.wait()
        for name, run in (("get", got), ("list", listed)):
            if set(run["statuses"]) != {"200"}:
                raise SystemExit(f"{variant} {name}: statuses {run['statuses']}")
        results[variant] = {
            "get_rps": got["rps"],
            "get_cpu_us": got["cpu_us"],
            "list_rps": listed["rps"],
            "list_cpu_us": listed["cpu_us"],
        }
        print(
            f"{variant:>12}: GET {got['rps']:.0f} req/s ({got['rps'] / base['rps']:.2f}x hello, "
            f"p99 {got['p99_ms']:.1f} ms; {got['cpu_us']:.0f} us CPU/request, "
            f"{base['cpu_us'] / got['cpu_us']:.2f}x hello's); "
            f"list of 10 {listed['rps']:.0f} req/s ({listed['cpu_us']:.0f} us CPU/request)"
        )
    full = results.get("full")
    if full:
        for variant, run in results.items():
            if variant == "full":
                continue
            # The piece's share of a full request: 1 - (CPU per request without / with it).
            share = 1 - run["get_cpu_us"] / full["get_cpu_us"]
            name = "all middleware" if variant == "bare" else variant[3:]
            print(f"share of {name:>14} in a GET: {share:.1%} of its CPU")
    print(json.dumps({"hello_rps": base["rps"], **results}))


if __name__ == "__main__":
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    main()
