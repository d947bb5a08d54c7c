"""The SSE fan-out: one watch and one encoding per video change for all its streams, a slow
stream holding only the latest state, keep-alives from one wheel, and everything given back
however a stream ends."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

from starlette.types import Message

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_gateway.domain import sse
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.entrypoints.stream import EventStream
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.stream_hub import StreamHub
from tests.unit.test_gateway_live import view


class Encoder:
    """Counts encodings; the frame names the version."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, v: VideoView) -> bytes:
        self.calls += 1
        return sse.event("status", v.version, v.status.value)


async def no_jobs(video_id: UUID) -> VideoView | None:
    return None


def make_hub(keepalive_s: float = 60.0) -> tuple[LiveVideos, StreamHub, Encoder]:
    live = LiveVideos(no_jobs, fallback_s=60.0)
    encoder = Encoder()
    return live, StreamHub(live, encoder, keepalive_s), encoder


async def test_a_change_is_encoded_once_and_the_same_bytes_reach_every_stream() -> None:
    live, hub, encoder = make_hub()
    vid = uuid4()
    slots = [await hub.join(vid, view(vid, 1), -1) for _ in range(50)]
    assert live.watched == 1 and hub.videos == 1 and hub.streams == 50
    first = [await s.take() for s in slots]
    assert encoder.calls == 1 and all(f is first[0] for f in first)
    live.remember(view(vid, 2, VideoStatus.RUNNING))
    second = [await asyncio.wait_for(s.take(), 1) for s in slots]
    assert encoder.calls == 2 and all(f is second[0] for f in second)
    assert second[0] is not None and b"id: 2" in second[0]
    for s in slots:
        await hub.leave(s)
    assert live.watched == 0 and hub.videos == 0  # the last stream gave the watch back


async def test_a_slow_stream_holds_only_the_latest_state_and_always_gets_the_terminal_one() -> None:
    live, hub, _ = make_hub()
    vid = uuid4()
    slow = await hub.join(vid, view(vid, 1), -1)
    fast = await hub.join(vid, view(vid, 1), -1)
    taken: list[bytes] = []
    for version in range(2, 40):
        live.remember(view(vid, version, VideoStatus.RUNNING))
        frame = await fast.take()
        assert frame is not None
        taken.append(frame)
    assert len(taken) == 38  # the fast one saw every change
    assert await slow.take() == sse.event("status", 39, "running")  # the slow one: the latest
    live.remember(view(vid, 40, VideoStatus.RUNNING))
    live.remember(view(vid, 41, VideoStatus.CANCELLED))
    live.remember(view(vid, 42, VideoStatus.RUNNING))  # nothing after the terminal one
    assert await slow.take() == sse.event("status", 41, "cancelled")
    assert await slow.take() is None  # and the stream ends
    await hub.leave(slow)
    await hub.leave(fast)


async def test_a_stream_resumed_after_a_version_gets_only_newer_ones() -> None:
    live, hub, _ = make_hub()
    vid = uuid4()
    slot = await hub.join(vid, view(vid, 3), 3)
    assert slot.frame is None
    live.remember(view(vid, 4))
    assert await asyncio.wait_for(slot.take(), 1) == sse.event("status", 4, "queued")
    await hub.leave(slot)


async def test_keep_alives_come_from_one_wheel_to_idle_streams_only() -> None:
    live, hub, _ = make_hub(keepalive_s=0.2)
    vid, other = uuid4(), uuid4()
    before = len(asyncio.all_tasks())
    slots = [await hub.join(v, view(v, 1), 1) for v in (vid, other) for _ in range(20)]
    # One task for all the streams' keep-alives, none per stream (the watches have theirs).
    assert len(asyncio.all_tasks()) - before == 1 + live.watched
    started = asyncio.get_running_loop().time()
    frames = await asyncio.wait_for(asyncio.gather(*(s.take() for s in slots)), 2)
    assert set(frames) == {sse.KEEPALIVE}
    assert 0.2 <= asyncio.get_running_loop().time() - started < 0.5
    # A stream that has just written something is not idle.
    live.remember(view(vid, 2))
    await asyncio.sleep(0.1)
    assert all(s.frame is not None and s.frame != sse.KEEPALIVE for s in slots[:20])
    for s in slots:
        await hub.leave(s)
    await asyncio.sleep(0.1)
    assert hub._wheel is not None and hub._wheel.done()  # no streams: the wheel stops
    await hub.close()


class Client:
    """An ASGI client: what was sent, and a disconnect when told."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.requested = False

    async def receive(self) -> Message:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Releases:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_a_pending_stream_starts_at_id_0_and_ends_after_the_terminal_event() -> None:
    live, hub, _ = make_hub()
    vid = uuid4()
    pending = PendingVideo(vid, "alice", "fox", VideoParams(seed=1), datetime.now(UTC))
    client, released = Client(), Releases()
    stream = EventStream(hub, pending, None, released)
    task = asyncio.create_task(stream({"type": "http"}, client.receive, client.send))
    await asyncio.sleep(0.05)
    assert client.sent[0]["status"] == 200
    assert client.body.startswith(b"retry: 2000\n\nevent: status\nid: 0\ndata: {")
    live.remember(view(vid, 1))
    live.remember(view(vid, 2, VideoStatus.CANCELLED))
    await asyncio.wait_for(task, 2)
    assert client.body.endswith(sse.event("status", 2, "cancelled"))
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert released.count == 1 and live.watched == 0 and hub.videos == 0


async def test_a_client_that_leaves_gives_back_its_slot_and_the_watch() -> None:
    live, hub, _ = make_hub()
    vid = uuid4()
    clients = [Client() for _ in range(3)]
    released = Releases()
    tasks = [
        asyncio.create_task(
            EventStream(hub, view(vid, 1), None, released)({"type": "http"}, c.receive, c.send)
        )
        for c in clients
    ]
    await asyncio.sleep(0.05)
    clients[0].gone.set()  # one leaves: the others keep the watch
    await asyncio.wait_for(tasks[0], 1)
    assert released.count == 1 and live.watched == 1 and hub.streams == 2
    clients[1].gone.set()
    clients[2].gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert released.count == 3 and live.watched == 0 and hub.videos == 0


async def test_a_client_gone_before_the_first_byte_still_gives_its_slot_back() -> None:
    live, hub, _ = make_hub()
    vid = uuid4()
    client, released = Client(), Releases()
    client.gone.set()
    await asyncio.wait_for(
        EventStream(hub, view(vid, 1), None, released)(
            {"type": "http"}, client.receive, client.send
        ),
        1,
    )
    assert released.count == 1 and live.watched == 0 and hub.videos == 0
