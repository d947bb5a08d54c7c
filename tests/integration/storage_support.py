"""Helpers for the storage service's integration tests (no tests here): a small real HTTP
server (result files, redirects, and a stand-in for the jobs service's query API), a real MP4,
and a watcher that collects what lands on Kafka topics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from openv_contracts import Envelope, Message, topics
from openv_contracts.queries import VideoPage, VideoView
from openv_contracts.storage_keys import video_output_key
from openv_contracts.video import VideoParams, VideoStatus
from openv_localstack.servers import SeaweedS3, TansuBroker
from openv_runpod_sim.render import RenderSpec, render_mp4
from openv_storage.config import Settings
from openv_storage.main import Storage, create_app

S3_ACCESS_KEY = "openv-storage-test"
S3_SECRET_KEY = "openv-storage-test-secret-0123456789"

_MP4: bytes | None = None


def small_mp4() -> bytes:
    """A real H.264 MP4 (PyAV), rendered once per test session."""
    global _MP4
    if _MP4 is None:
        _MP4 = render_mp4(RenderSpec(width=64, height=64, num_frames=7, seed=3))
    return _MP4


def mp4_like(size: int) -> bytes:
    """`size` bytes that start like an MP4 (an ftyp box) and are not compressible."""
    head = small_mp4()[:32]
    filler = uuid.uuid4().bytes * (size // 16 + 1)
    return (head + filler)[:size]


def video_view(
    video_id: uuid.UUID,
    user_id: str,
    status: VideoStatus,
    *,
    object_key: str | None = None,
    file_deleted: bool = False,
) -> VideoView:
    now = datetime.now(UTC)
    completed = status is VideoStatus.COMPLETED
    return VideoView(
        id=video_id,
        user_id=user_id,
        status=status,
        progress=100 if completed else None,
        prompt="a test clip",
        params=VideoParams(seed=1),
        duration_seconds=1.0,
        created_at=now,
        updated_at=now,
        object_key=object_key or (video_output_key(user_id, video_id) if completed else None),
        size_bytes=100 if completed else None,
        content_type="video/mp4" if completed else None,
        file_deleted=file_deleted,
        version=3,
    )


Route = Callable[[BaseHTTPRequestHandler], None]


class FakeWeb:
    """A threaded HTTP server on `host`: the routes below plus any added with `route()`.

    - `/files/<name>`: bytes registered with `serve()` (with Content-Length), or, with
      `?chunked=1`, without a length (the body ends when the connection closes).
    - `/redirect?to=<url>`: 302 to that URL; `/status/<code>`: that status.
    - `/drip?seconds=<s>`: an MP4 head, then a byte every 0.2 s for `s` seconds.
    - `/internal/videos/<id>`, `/internal/videos?status=...`: the jobs query API, answered
      from `videos` (an unknown id is a 404); `jobs_down = True` answers 503.
    Every request path is recorded in `requests`.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.files: dict[str, bytes] = {}
        self.videos: dict[uuid.UUID, VideoView] = {}
        self.jobs_down = False
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                fake.handle(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, name: str, content: bytes) -> str:
        self.files[name] = content
        return self.url(f"/files/{name}")

    def hits(self, fragment: str) -> int:
        return sum(fragment in path for path in self.requests)

    def start(self) -> FakeWeb:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    # ----------------------------------------------------------------- routing

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path.startswith("/files/"):
            self._file(req, path.removeprefix("/files/"), chunked=query.get("chunked") == "1")
        elif path == "/redirect":
            req.send_response(302)
            req.send_header("Location", query["to"])
            req.end_headers()
        elif path.startswith("/status/"):
            self._send(req, int(path.removeprefix("/status/")), b"status", "text/plain")
        elif path == "/drip":
            self._drip(req, float(query.get("seconds", "5")))
        elif path == "/internal/videos":
            self._video_page(req, query)
        elif path.startswith("/internal/videos/"):
            self._video(req, path.removeprefix("/internal/videos/"))
        else:
            self._send(req, 404, b"not found", "text/plain")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _file(self, req: BaseHTTPRequestHandler, name: str, chunked: bool) -> None:
        content = self.files.get(name)
        if content is None:
            self._send(req, 404, b"no such file", "text/plain")
            return
        if not chunked:
            self._send(req, 200, content, "video/mp4")
            return
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.end_headers()
        view = memoryview(content)
        for start in range(0, len(content), 256 * 1024):
            req.wfile.write(view[start : start + 256 * 1024])

    def _drip(self, req: BaseHTTPRequestHandler, seconds: float) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.end_headers()
        req.wfile.write(small_mp4()[:64])
        req.wfile.flush()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(0.2)
                req.wfile.write(b"\0")
                req.wfile.flush()
        except OSError:
            pass  # the client gave up

    def _video(self, req: BaseHTTPRequestHandler, video_id: str) -> None:
        if self.jobs_down:
            self._send(req, 503, b"{}", "application/json")
            return
        view = self.videos.get(uuid.UUID(video_id))
        if view is None:
            self._send(req, 404, b'{"detail": "video not found"}', "application/json")
            return
        self._send(req, 200, view.model_dump_json().encode(), "application/json")

    def _video_page(self, req: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if self.jobs_down:
            self._send(req, 503, b"{}", "application/json")
            return
        status = query.get("status")
        views = [v for v in self.videos.values() if status is None or v.status.value == status]
        start = int(query.get("cursor", "0"))
        limit = int(query.get("limit", "20"))
        page = views[start : start + limit]
        more = start + limit < len(views)
        body = VideoPage(data=page, next_cursor=str(start + limit) if more else None)
        self._send(req, 200, body.model_dump_json().encode(), "application/json")


def fake_web(host: str = "127.0.0.1") -> Iterator[FakeWeb]:
    web = FakeWeb(host).start()
    try:
        yield web
    finally:
        web.stop()


# --------------------------------------------------------------------- Kafka


async def produce(bootstrap: str, topic: str, envelope: Envelope, key: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, envelope.model_dump_json().encode(), key=key.encode())
    finally:
        await producer.stop()


def wrap(message: Message, user_id: str) -> Envelope:
    return Envelope.wrap(message, user_id=user_id, trace_context={})


class TopicWatcher:
    """Reads topics from the beginning in the background (no consumer group: no join wait)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        self.records: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()

    async def _collect(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    self.records.append((record.topic, json.loads(record.value)))

    def matching(self, topic: str, predicate: Callable[[dict[str, Any]], bool]) -> list[Any]:
        return [value for t, value in self.records if t == topic and predicate(value)]

    async def wait_for(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool], within_s: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            found = self.matching(topic, predicate)
            if found:
                first: dict[str, Any] = found[0]
                return first
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing matching on {topic} within {within_s} s")
            await asyncio.sleep(0.05)


def put_object(client: Any, bucket: str, key: str, data: bytes) -> None:
    import io

    client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="video/mp4")


def object_keys(client: Any, bucket: str, prefix: str = "") -> set[str]:
    return {o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)}


def new_video(user_id: str | None = None) -> tuple[str, uuid.UUID, str]:
    """(user id, video id, output key) of a fresh video."""
    user = user_id or f"user-{uuid.uuid4().hex[:8]}"
    video_id = uuid.uuid4()
    return user, video_id, video_output_key(user, video_id)


def envelope_data(value: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = value["data"]
    return data


__all__ = [
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "FakeWeb",
    "TopicWatcher",
    "envelope_data",
    "fake_web",
    "mp4_like",
    "new_video",
    "object_keys",
    "produce",
    "put_object",
    "small_mp4",
    "video_view",
    "wrap",
]


# --------------------------------------------------------------------- the service


def storage_settings(
    kafka: TansuBroker, seaweed: SeaweedS3, web: FakeWeb, bucket: str, **overrides: Any
) -> Settings:
    """The storage service against these servers: short S3 timeouts, and retries that last
    long enough to restart SeaweedFS inside them (about 1.5 s here; 10 s budget)."""
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka.bootstrap,
        "s3_endpoint": seaweed.endpoint,
        "s3_access_key": S3_ACCESS_KEY,
        "s3_secret_key": S3_SECRET_KEY,
        "s3_bucket": bucket,
        "jobs_url": web.base,
        "s3_timeout_s": 2.0,
        "retry_attempts": 10,
        "retry_backoff_s": 0.2,
        "retry_backoff_max_s": 1.5,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_storage(settings: Settings) -> AsyncIterator[Storage]:
    """The storage service's app started (bucket, consumers), stopped afterwards."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app.state.storage


@asynccontextmanager
async def watching_storage_facts(kafka: TansuBroker) -> AsyncIterator[TopicWatcher]:
    """What the service publishes: its facts and its dead letters."""
    watcher = TopicWatcher(kafka.bootstrap, [topics.STORAGE_EVENTS, topics.DEAD_LETTER])
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()
