"""Memory and fan-out of SSE streams on one gateway process (a script, not a test).

Serves the real gateway app under uvicorn in a child process, with the jobs service replaced
by an in-memory fake (`JobsApi.video` patched; no Kafka, no Postgres: only the stream path is
measured), opens N streams over raw sockets (spread over `--videos` videos and one user per
`--per-user` streams), waits until each has its first event, and prints the gateway's RSS
growth per open stream. Then it makes `--changes` status changes of every video at once (the
way the video feed reports an event: `LiveVideos.notify` with the new view) and prints the
p50/p99/max time from the change to its arrival on each stream.

    .venv/bin/python benchmarks/stream_memory.py [--streams 2000] [--videos 20]

`--src DIR` serves another checkout's gateway (e.g. `git archive main | tar -x -C DIR`): its
`services/gateway` and `shared` go first on the child's path, for a before/after comparison.
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import psutil

# One per run, handed to the served gateway in its environment.
SECRET = os.environ.get("OPENV_BENCH_STREAM_SECRET") or secrets.token_hex(32)
NAMESPACE = UUID("6f1d7c52-5b63-4ad1-9c1e-0d5d2b6c8f11")


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def video_id(i: int) -> UUID:
    return uuid5(NAMESPACE, f"video-{i}")


def user_of(i: int) -> str:
    return f"bench-user-{i}"


# --- the server (child process) -------------------------------------------------------------


def serve(port: int, videos: int, users: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    from openv_contracts.queries import VideoView
    from openv_contracts.video import VideoParams, VideoStatus
    from openv_gateway.config import Settings
    from openv_gateway.main import create_app
    from openv_infra.jobs_api import JobsApi

    _raise_fd_limit()
    now = datetime.now(UTC)
    # Video i belongs to user i % users: every user's streams are on their own videos.
    views: dict[UUID, VideoView] = {}
    for i in range(videos):
        views[video_id(i)] = VideoView(
            id=video_id(i),
            user_id=user_of(i % users),
            status=VideoStatus.QUEUED,
            progress=None,
            prompt="a red fox running through snow",
            params=VideoParams(seed=1),
            duration_seconds=31 / 24,
            created_at=now,
            updated_at=now,
            version=1,
        )

    async def fake_video(self: Any, vid: UUID, version: int | None = None) -> VideoView | None:
        return views.get(vid)

    JobsApi.video = fake_video  # type: ignore[method-assign,assignment]
    app: FastAPI = create_app(
        Settings(jwt_secret=SECRET, max_open_per_user=1_000_000, live_fallback_poll_s=3600)
    )

    @app.post("/bench/change")
    async def change() -> dict[str, float]:
        started = time.monotonic()
        for vid, old in list(views.items()):
            new = old.model_copy(
                update={"version": old.version + 1, "progress": min(99, old.version)}
            )
            views[vid] = new
            # What the feed does for an event: the watch re-reads the (fake) jobs service.
            app.state.live.notify(vid, new.version)
        return {"started": started, "notified_s": time.monotonic() - started}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


# --- the client -----------------------------------------------------------------------------


class Stream(asyncio.Protocol):
    #: Streams per event id that have it, and whether all `expected` streams do.
    arrived: dict[int, int] = {}
    expected = 0
    all_in: asyncio.Event

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.buffer = b""
        self.seen: dict[int, float] = {}  # event id -> when it arrived
        self.first = asyncio.get_running_loop().create_future()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"id: "):
                    self.seen[int(line[4:])] = now
                    if not self.first.done():
                        self.first.set_result(None)
                    Stream.arrived[int(line[4:])] = Stream.arrived.get(int(line[4:]), 0) + 1
                    if Stream.arrived[int(line[4:])] == Stream.expected:
                        Stream.all_in.set()
                elif (
                    line.startswith(b"HTTP/1.1 ")
                    and not line.startswith(b"HTTP/1.1 200")
                    and not self.first.done()
                ):
                    self.first.set_exception(RuntimeError(line.decode()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


async def open_stream(port: int, i: int, videos: int, users: int) -> Stream:
    from openv_localstack.tokens import make_token

    vid = i % videos
    token = make_token(user_of(vid % users), SECRET)
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(Stream, "127.0.0.1", port)
    request = (
        f"GET /v1/videos/{video_id(vid)}/stream HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    assert stream.transport is not None
    assert isinstance(stream.transport, asyncio.WriteTransport)
    stream.transport.write(request.encode())
    await asyncio.wait_for(stream.first, 60)
    return stream


async def post_change(port: int) -> dict[str, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /bench/change HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    body = await reader.readexactly(length)
    writer.close()
    answer: dict[str, float] = json.loads(body)
    return answer


async def measure(args: argparse.Namespace, port: int, server: psutil.Process) -> None:
    users = max(1, args.streams // args.per_user)
    # Warm up (imports, first requests, allocator), then close those streams.
    warm = [await open_stream(port, i, args.videos, users) for i in range(50)]
    for s in warm:
        s.close()
    await asyncio.sleep(1.0)
    before = server.memory_info().rss
    started = time.monotonic()
    streams: list[Stream] = []
    errors = 0
    for batch in range(0, args.streams, args.batch):
        results = await asyncio.gather(
            *(
                open_stream(port, i, args.videos, users)
                for i in range(batch, min(args.streams, batch + args.batch))
            ),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, Stream):
                streams.append(r)
            else:
                errors += 1
    opened_s = time.monotonic() - started
    await asyncio.sleep(1.0)
    after = server.memory_info().rss
    print(
        f"streams: {len(streams)} open ({errors} errors) in {opened_s:.1f} s on {args.videos} "
        f"videos, {users} users; gateway RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB: "
        f"{(after - before) / max(1, len(streams)) / 1024:.1f} KiB per stream"
    )
    delays: list[float] = []
    for n in range(args.changes):
        version = 2 + n
        Stream.expected, Stream.all_in = len(streams), asyncio.Event()
        answer = await post_change(port)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(Stream.all_in.wait(), 30)
        missing = sum(version not in s.seen for s in streams)
        these = sorted(s.seen[version] - answer["started"] for s in streams if version in s.seen)
        if not these:
            print(f"change {n + 1}: reached no stream")
            continue
        delays += these
        print(
            f"change {n + 1}: notify took {answer['notified_s'] * 1000:.1f} ms; arrival on all "
            f"streams p50 {statistics.median(these) * 1000:.0f} ms, "
            f"p99 {these[int(len(these) * 0.99) - 1] * 1000:.0f} ms, "
            f"max {these[-1] * 1000:.0f} ms, {missing} missing"
        )
        await asyncio.sleep(0.5)
    delays.sort()
    print(
        "all changes: none arrived"
        if not delays
        else f"all changes: p50 {statistics.median(delays) * 1000:.0f} ms, "
        f"p99 {delays[int(len(delays) * 0.99) - 1] * 1000:.0f} ms"
    )
    for s in streams:
        s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10, help="streams per user")
    parser.add_argument("--changes", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="streams opened at once")
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--src", help="serve the gateway of this checkout instead")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    users = max(1, args.streams // args.per_user)
    if args.serve:
        serve(args.port, args.videos, users)
        return
    _raise_fd_limit()
    env = {**os.environ, "OPENV_BENCH_STREAM_SECRET": SECRET}
    if args.src:
        paths = [os.path.join(args.src, "services", "gateway"), os.path.join(args.src, "shared")]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    child = subprocess.Popen([sys.executable, __file__, "--serve", *sys.argv[1:]], env=env)
    try:
        time.sleep(0.5)
        server = psutil.Process(child.pid)
        for _ in range(100):
            try:
                asyncio.run(post_change_probe(args.port))
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(measure(args, args.port, server))
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


async def post_change_probe(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


if __name__ == "__main__":
    main()
