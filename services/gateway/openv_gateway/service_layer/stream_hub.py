"""The SSE streams of this instance: one fan-out per video, one keep-alive wheel for all.

The first stream of a video takes one watch on it (`LiveVideos.watch`) and one listener on
that watch; the last stream leaving gives both back. Each newer view is encoded once (the
whole SSE frame) and the same bytes are handed to every stream of the video. A stream is a
`Slot`: at most the latest frame it has not written yet (a state is a whole snapshot, so a
newer one replaces an unsent older one: a slow client never holds the others up nor makes
anything queue), the end once the terminal frame is taken, and a future its one coroutine
waits on. Keep-alives come from one task for every stream (a stream idle for
`keepalive_s` gets one within a quarter of that), not from a timer per stream.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from uuid import UUID

from openv_contracts.queries import VideoView
from openv_contracts.video import TERMINAL_STATUSES
from openv_gateway.domain.sse import KEEPALIVE
from openv_gateway.service_layer.live import LiveVideos, Watch

log = logging.getLogger(__name__)

#: A view -> its whole SSE frame (presented and encoded once per change).
Encode = Callable[[VideoView], bytes]


class Slot:
    """One stream's mailbox (kept small: there may be tens of thousands)."""

    __slots__ = ("channel", "closed", "final", "frame", "idle_since", "sent", "waiter")

    def __init__(self, channel: "_Channel", sent: int) -> None:
        self.channel = channel
        #: The newest version handed to this stream (-1: none yet).
        self.sent = sent
        #: What to write next: the latest unsent frame, or a keep-alive.
        self.frame: bytes | None = None
        #: `frame` is the terminal event: the stream ends once it is taken.
        self.final = False
        #: Nothing more to write: the terminal frame was taken, the client left, or shutdown.
        self.closed = False
        self.idle_since = time.monotonic()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, version: int, frame: bytes, final: bool) -> None:
        """Hand over the state at `version` (replacing an unsent older one); never blocks."""
        if version <= self.sent or self.final or self.closed:
            return
        self.sent, self.frame, self.final = version, frame, final
        self._wake()

    def keepalive(self) -> None:
        if self.frame is None and not self.closed:
            self.frame = KEEPALIVE
            self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def client_gone(self, _disconnect: object) -> None:
        """Done-callback of the task that waits for the client's disconnect."""
        self.close()

    async def take(self) -> bytes | None:
        """The next bytes to write, once there are any; None when the stream should end."""
        while self.frame is None:
            if self.closed:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.closed and not self.final:
            return None  # the client left: what was pending has nobody to go to
        frame, self.frame = self.frame, None
        if self.final:
            self.closed = True
        self.idle_since = time.monotonic()
        return frame

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Channel:
    """The streams of one video, the watch they share, and its latest encoded frame."""

    def __init__(self, video_id: UUID) -> None:
        self.video_id = video_id
        self.slots: set[Slot] = set()
        #: Streams joining or joined (the watch is given back when it drops to 0).
        self.members = 0
        self.version = -1
        self.frame: bytes | None = None
        self.final = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held: AbstractAsyncContextManager[Watch] | None = None
        self.stop_listening: Callable[[], None] | None = None


class StreamHub:
    def __init__(self, live: LiveVideos, encode: Encode, keepalive_s: float) -> None:
        self.live = live
        self.encode = encode
        self.keepalive_s = keepalive_s
        self._channels: dict[UUID, _Channel] = {}
        self._wheel: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        return sum(len(c.slots) for c in self._channels.values())

    @property
    def videos(self) -> int:
        return len(self._channels)

    async def join(self, video_id: UUID, known: VideoView | None, sent: int) -> Slot:
        """A slot for a new stream of `video_id` that already has `sent` (-1: nothing); it
        gets the newest state above that at once if there is one. Always `leave` it."""
        channel = self._channels.get(video_id)
        if channel is None:
            channel = self._channels[video_id] = _Channel(video_id)
            channel.members += 1
            try:
                await self._open(channel, known)
            except BaseException as exc:
                channel.members -= 1
                if self._channels.get(video_id) is channel:
                    del self._channels[video_id]
                channel.ready.set_exception(exc)
                channel.ready.exception()  # retrieved: joiners waiting on it re-raise it
                raise
            channel.ready.set_result(None)
        else:
            channel.members += 1
            try:
                await asyncio.shield(channel.ready)
            except BaseException:
                channel.members -= 1
                raise
        slot = Slot(channel, sent)
        channel.slots.add(slot)
        if known is not None:
            self._offer(channel, known)  # a newer state than the watch has: everyone gets it
        if channel.frame is not None:
            slot.put(channel.version, channel.frame, channel.final)
        if self._wheel is None or self._wheel.done():
            self._wheel = asyncio.create_task(self._keepalives(), name="stream-keepalives")
        return slot

    async def leave(self, slot: Slot) -> None:
        """The stream ended (however): the last one of its video gives the watch back."""
        slot.close()
        channel = slot.channel
        if slot not in channel.slots:
            return
        channel.slots.discard(slot)
        channel.members -= 1
        if channel.members > 0:
            return
        if self._channels.get(channel.video_id) is channel:
            del self._channels[channel.video_id]
        if channel.stop_listening is not None:
            channel.stop_listening()
        if channel.held is not None:
            await channel.held.__aexit__(None, None, None)

    async def close(self) -> None:
        """End every stream (shutdown) and stop the wheel."""
        for channel in list(self._channels.values()):
            for slot in list(channel.slots):
                slot.close()
        if self._wheel is not None:
            self._wheel.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wheel

    async def _open(self, channel: _Channel, known: VideoView | None) -> None:
        held = self.live.watch(channel.video_id, known=known)
        watch = await held.__aenter__()
        channel.held = held
        channel.stop_listening = watch.listen(lambda view: self._offer(channel, view))
        if watch.view is not None:
            self._offer(channel, watch.view)

    def _offer(self, channel: _Channel, view: VideoView) -> None:
        """A view of the channel's video: if newer, encode it once, give it to every slot."""
        if view.version <= channel.version or channel.final:
            return
        try:
            frame = self.encode(view)
        except Exception:  # runs in the feed's step: never let one video break it
            log.exception("encoding video %s version %s failed", view.id, view.version)
            return
        final = view.status in TERMINAL_STATUSES
        channel.version, channel.frame, channel.final = view.version, frame, final
        for slot in channel.slots:
            slot.put(view.version, frame, final)

    async def _keepalives(self) -> None:
        """The wheel: every quarter of `keepalive_s`, a keep-alive to each idle stream."""
        tick = self.keepalive_s / 4
        while self._channels:
            await asyncio.sleep(tick)
            due = time.monotonic() - self.keepalive_s
            for channel in list(self._channels.values()):
                for slot in channel.slots:
                    if slot.idle_since <= due:
                        slot.keepalive()
