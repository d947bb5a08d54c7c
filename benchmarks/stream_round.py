"""One round of the reads benchmark's live-status test: N status streams
(`GET /v1/videos/{id}/stream`) held open at once over N/per_video videos, one user per video;
then videos cancelled through the gateway, and each stream's `cancelled` event timed: first a
few one at a time (`PACED` videos, `PACED_PER_S` cancels a second: what a change costs while
N streams are open), then all the others at once (the worst case: every stream changes).

Streams are raw asyncio sockets with a hand-written HTTP/1.1 GET and the incremental reader of
sse_reader.py: an HTTP client's per-stream cost would be the benchmark's, not the gateway's,
with 10,000 streams on two cores. Connects are spread over four loopback source addresses so
that back-to-back rounds do not run out of ephemeral ports (each closed stream keeps one in
TIME_WAIT for a minute)."""

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psutil
from benchmarks.raw_http import Connection, create_request, request
from benchmarks.sse_reader import ChunkedSse, percentile

from openv_localstack.tokens import make_token

SOURCES = tuple(f"127.0.0.{i}" for i in range(1, 5))
#: Connects (and request writes) in flight at once: the gateway's listen backlog is 2,048.
CONNECTING = 1000
#: Videos cancelled one at a time before the rest all at once, and how many a second.
PACED = 50
PACED_PER_S = 10.0


@dataclass
class Stream:
    video_id: str
    token: str
    source: str
    status: int | None = None
    error: str | None = None
    opened_at: float | None = None
    #: Wall-clock arrival of the `cancelled` event, and the event's own `updated_at`.
    arrived_at: float | None = None
    updated_at: float | None = None


@dataclass
class Videos:
    ids: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    cancel_statuses: Counter[int] = field(default_factory=Counter)


def rss(pid: int) -> int:
    """Resident bytes of a process and its children."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


async def _each(
    host: str,
    port: int,
    connections: int,
    requests: Iterable[tuple[str, bytes]],
    on_send: Callable[[str], None] = lambda _: None,
) -> dict[str, tuple[int, bytes]]:
    """Send keyed requests over `connections` keep-alive sockets; answers by key."""
    pending = list(requests)
    answers: dict[str, tuple[int, bytes]] = {}

    async def worker() -> None:
        connection = await Connection.open(host, port)
        try:
            while pending:
                key, raw = pending.pop()
                on_send(key)
                answers[key] = await connection.request(raw)
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(min(connections, len(pending)) or 1)))
    return answers


async def create_videos(host: str, port: int, tag: str, count: int) -> Videos:
    """`count` videos, each of its own user, decided (not `pending`) by the jobs service."""
    videos = Videos()
    address = f"{host}:{port}"
    tokens = {f"{tag}-{i}": make_token(f"{tag}-{i}", ttl_s=7200) for i in range(count)}
    created = await _each(
        host, port, 32, ((user, create_request(address, t)) for user, t in tokens.items())
    )
    for user, (status, body) in created.items():
        if status != 202:
            raise RuntimeError(f"create answered {status}: {body[:200]!r}")
        video = json.loads(body)
        videos.ids.append(video["id"])
        videos.tokens[video["id"]] = tokens[user]
    for _ in range(60):
        gets = await _each(
            host,
            port,
            32,
            ((v, request("GET", address, f"/v1/videos/{v}", t)) for v, t in videos.tokens.items()),
        )
        if all(json.loads(body)["status"] != "pending" for _, body in gets.values()):
            return videos
        await asyncio.sleep(0.5)
    raise RuntimeError("videos still pending after 30 s")


async def follow(
    stream: Stream, host: str, port: int, gate: asyncio.Semaphore, settled: Callable[[], None]
) -> None:
    """Open one stream and read it to its end, noting when it opened and when `cancelled` came."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with gate:
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(stream.source, 0)
            )
            writer.write(
                request(
                    "GET", f"{host}:{port}", f"/v1/videos/{stream.video_id}/stream", stream.token
                )
            )
        head = await reader.readuntil(b"\r\n\r\n")
        stream.status = int(head[9:12])
        if stream.status != 200:
            return
        if b"transfer-encoding: chunked" not in head.lower():
            stream.error = "not chunked"
            return
        sse = ChunkedSse()
        while not sse.finished:
            data = await reader.read(65536)
            now = time.time()
            if not data:
                stream.error = "closed before its last chunk"
                return
            for event in sse.feed(data):
                if event.name != "status":
                    continue
                if stream.opened_at is None:
                    stream.opened_at = now
                    settled()
                video = json.loads(event.data)
                if video["status"] == "cancelled":
                    stream.arrived_at = now
                    stream.updated_at = datetime.fromisoformat(video["updated_at"]).timestamp()
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        stream.error = type(exc).__name__
    finally:
        if stream.opened_at is None:
            settled()
        if writer is not None:
            writer.close()


async def cancel_all(
    host: str, port: int, videos: Videos, connections: int, ids: Iterable[str]
) -> None:
    """POST /v1/videos/{id}/cancel for every one of `ids`, `connections` at a time; notes each
    send."""
    address = f"{host}:{port}"
    cancels = (
        (v, request("POST", address, f"/v1/videos/{v}/cancel", videos.tokens[v])) for v in ids
    )
    answers = await _each(
        host, port, connections, cancels, lambda v: videos.sent_at.__setitem__(v, time.time())
    )
    videos.cancel_statuses.update(status for status, _ in answers.values())


async def stream_round(
    host: str,
    port: int,
    gateway_pid: int,
    streams: int,
    per_video: int,
    timeout_s: float,
    restart: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Create the videos, open `streams` streams, cancel every video; the round's figures.
    With `restart` (which restarts the gateway and returns its new pid), the streams open on
    a gateway that knows none of the videos: every open asks the jobs service at once."""
    tag = f"reads-{streams}" + ("-cold" if restart else "")
    videos = await create_videos(host, port, tag, max(1, streams // per_video))
    if restart is not None:
        gateway_pid = await asyncio.to_thread(restart)
    await asyncio.sleep(2.0)
    rss_before = rss(gateway_pid)
    all_streams = [
        Stream(video, videos.tokens[video], SOURCES[i % len(SOURCES)])
        for i, video in enumerate(v for v in videos.ids for _ in range(per_video))
    ]
    done = asyncio.Event()
    count = 0

    def settled() -> None:
        nonlocal count
        count += 1
        if count == len(all_streams):
            done.set()

    gate = asyncio.Semaphore(CONNECTING)
    started = time.monotonic()
    tasks = [asyncio.create_task(follow(s, host, port, gate, settled)) for s in all_streams]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout_s)
    open_s = time.monotonic() - started
    await asyncio.sleep(2.0)
    opened = [s for s in all_streams if s.opened_at is not None]
    errors: Counter[str] = Counter(
        "not open in time"
        if s.error is None and s.status in (None, 200)
        else s.error or str(s.status)
        for s in all_streams
        if s.opened_at is None
    )
    rss_open = rss(gateway_pid)
    fds = psutil.Process(gateway_pid).num_fds()
    paced = set(videos.ids[: min(PACED, len(videos.ids) // 10)])
    for video in paced:  # one at a time, each alone in flight
        await cancel_all(host, port, videos, 1, [video])
        await asyncio.sleep(1 / PACED_PER_S)
    await asyncio.sleep(2.0)
    sending = time.time()
    await cancel_all(host, port, videos, 64, [v for v in videos.ids if v not in paced])
    send_s = time.time() - sending
    _, late = await asyncio.wait(tasks, timeout=timeout_s)
    for task in late:
        task.cancel()
    arrived = [s for s in opened if s.arrived_at is not None and s.updated_at is not None]
    at_once = [s for s in arrived if s.video_id not in paced]
    one_by_one = [s for s in arrived if s.video_id in paced]
    return {
        "streams": len(all_streams),
        "videos": len(videos.ids),
        "opened": len(opened),
        "open_errors": dict(errors),
        "open_s": open_s,
        "rss_per_stream_kb": (rss_open - rss_before) / max(1, len(opened)) / 1024,
        "rss_before_mb": rss_before / 2**20,
        "gateway_fds": fds,
        "cancel_statuses": dict(videos.cancel_statuses),
        "cancel_send_s": send_s,
        "arrived": len(arrived),
        "unfinished": len(late),
        "paced_videos": len(paced),
        "paced_from_event_ms": _latencies(one_by_one, lambda s: s.updated_at),
        "from_event_ms": _latencies(at_once, lambda s: s.updated_at),
        "from_send_ms": _latencies(at_once, lambda s: videos.sent_at[s.video_id]),
    }


def _latencies(
    streams: list[Stream], since: Callable[[Stream], float | None]
) -> list[float | None]:
    """p50 and p99 of arrival minus `since`, in ms."""
    values = sorted(s.arrived_at - since(s) for s in streams)  # type: ignore[operator]
    return [_ms(percentile(values, p)) for p in (0.5, 0.99)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds
