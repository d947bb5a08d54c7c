"""Live status: in-memory waiters and streams of this instance, woken by the video feed.

Whoever waits on a video (a create waiting for its decision, `Prefer: wait`, a cancel or a
delete waiting for its outcome, an SSE stream) holds a *watch* on it. A video has at most one
watch per instance however many clients wait on it, and the watch re-reads the jobs service
only when the feed reports an event for that video, or at a low fallback rate so a missed
message cannot hang anyone. So the jobs service sees one read per change per watched video,
not one per client per poll interval.

Reads share a small cache of recent views for the same reason: a view the jobs service
returned is served again until the feed reports a newer event of that video, or for at most
the fallback interval (the bound a missed message already has for waiters). Polling clients
then cost the jobs service one read per change, not one per poll.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from openv_contracts.queries import JobsUnavailable, VideoView

log = logging.getLogger(__name__)

Fetch = Callable[[UUID], Awaitable[VideoView | None]]
#: Told each newer view of a watched video (must not block: it runs in the feed's step).
Listener = Callable[[VideoView], None]


class Watch:
    """The latest known state of one video, and a signal fired whenever it changes."""

    def __init__(self, video_id: UUID, fetch: Fetch, fallback_s: float) -> None:
        self.video_id = video_id
        self.view: VideoView | None = None
        self.refs = 0
        self._fetch = fetch
        self._fallback_s = fallback_s
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._listeners: list[Listener] = []

    @property
    def version(self) -> int:
        return self.view.version if self.view is not None else 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.video_id}")

    def stop(self) -> asyncio.Task[None] | None:
        """Stop re-reading; never blocks the caller. The task ends at its next step even if a
        library swallows the cancellation (httpx shields parts of a request from it)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        return self._task

    def hint(self, version: int | None) -> None:
        """The feed saw an event of this video; re-read it unless we already have it."""
        if version is None or version > self.version:
            self._wake.set()

    def update(self, view: VideoView | None) -> None:
        """Keep `view` if it is newer than what we have, and tell everyone who waits."""
        if view is None or view.version <= self.version:
            return
        self.view = view
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in list(self._listeners):
            listener(view)

    def listen(self, listener: "Listener") -> Callable[[], None]:
        """Call `listener` with every newer view from now on (synchronously, in order of
        versions, each version once); returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    async def refresh(self) -> VideoView | None:
        """Read the video now (raises JobsUnavailable); the newest view known."""
        self.update(await self._fetch(self.video_id))
        return self.view

    async def next_change(self, after_version: int, timeout_s: float) -> VideoView | None:
        """The view once its version exceeds `after_version`, or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            changed = self._changed
            if self.view is not None and self.view.version > after_version:
                return self.view
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    async def wait_until(
        self, done: Callable[[VideoView], bool], timeout_s: float
    ) -> VideoView | None:
        """The first view for which `done` holds; else, after `timeout_s`, the last one seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            changed = self._changed
            if self.view is not None and done(self.view):
                return self.view
            left = deadline - time.monotonic()
            if left <= 0:
                return self.view
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._fallback_s)
            if self._stopping:
                return
            self._wake.clear()
            try:
                await self.refresh()
            except JobsUnavailable as exc:
                log.debug("re-reading video %s failed: %s", self.video_id, exc)
            except Exception:
                log.exception("re-reading video %s failed", self.video_id)


class LiveVideos:
    def __init__(self, fetch: Fetch, fallback_s: float, recent_size: int = 10_000) -> None:
        self.fetch = fetch
        self.fallback_s = fallback_s
        self.recent_size = recent_size
        self._watches: dict[UUID, Watch] = {}
        # video id -> (view, when it was read); and the newest version the feed reported.
        self._recent: OrderedDict[UUID, tuple[VideoView, float]] = OrderedDict()
        self._reported: OrderedDict[UUID, int] = OrderedDict()

    def is_watched(self, video_id: UUID) -> bool:
        return video_id in self._watches

    def notify(self, video_id: UUID, version: int | None, view: VideoView | None = None) -> None:
        """The feed saw an event of `video_id` (at `version`, leaving it as `view` when the
        event tells all of it: then nobody here needs to read it)."""
        if view is not None:
            self.remember(view)
            watch = self._watches.get(video_id)
            if watch is not None:
                watch.update(view)
        if version is not None:
            _put(self._reported, video_id, max(version, self._reported.get(video_id, 0)))
        cached = self._recent.get(video_id)
        if cached is not None and (version is None or cached[0].version < version):
            del self._recent[video_id]
        watch = self._watches.get(video_id)
        if watch is not None:
            watch.hint(version)

    async def read(self, video_id: UUID) -> VideoView | None:
        """The video as a recent read saw it if nothing changed since, else read now."""
        cached = self._recent.get(video_id)
        if cached is not None and time.monotonic() - cached[1] <= self.fallback_s:
            return cached[0]
        return await self._read(video_id)

    async def _read(self, video_id: UUID) -> VideoView | None:
        view = await self.fetch(video_id)
        if view is not None:
            self.remember(view)
        return view

    def remember(self, view: VideoView) -> None:
        """Keep `view` for reads, unless the feed has reported a newer event already."""
        if view.version >= self._reported.get(view.id, 0):
            cached = self._recent.get(view.id)
            if cached is None or cached[0].version <= view.version:
                _put(self._recent, view.id, (view, time.monotonic()))
        while len(self._recent) > self.recent_size:
            self._recent.popitem(last=False)
        while len(self._reported) > self.recent_size:
            self._reported.popitem(last=False)

    @property
    def watched(self) -> int:
        return len(self._watches)

    @contextlib.asynccontextmanager
    async def watch(self, video_id: UUID, known: VideoView | None = None) -> AsyncIterator[Watch]:
        """Hold a watch on `video_id` for the duration of the block.

        Take it *before* publishing a command about the video, so no event can slip by.
        """
        watch = self._watches.get(video_id)
        if watch is None:
            watch = self._watches[video_id] = Watch(video_id, self._read, self.fallback_s)
            watch.start()
        watch.refs += 1
        watch.update(known)
        if known is not None:
            self.remember(known)
        try:
            yield watch
        finally:
            watch.refs -= 1
            if watch.refs == 0:
                if self._watches.get(video_id) is watch:
                    del self._watches[video_id]
                watch.stop()

    async def close(self, timeout_s: float = 2.0) -> None:
        watches, self._watches = list(self._watches.values()), {}
        tasks = {t for t in (w.stop() for w in watches) if t is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)


K = TypeVar("K")
V = TypeVar("V")


def _put(entries: OrderedDict[K, V], key: K, value: V) -> None:
    entries[key] = value
    entries.move_to_end(key)
