"""Live status: in-memory waiters and streams of this instance, woken by the video feed.

Whoever waits on a video (a create waiting for its decision, `Prefer: wait`, a cancel or a
delete waiting for its outcome, an SSE stream) holds a *watch* on it. A video has at most one
watch per instance however many clients wait on it, and the watch re-reads the jobs service
only when the feed reports an event for that video, or at a low fallback rate so a missed
message cannot hang anyone. So the jobs service sees one read per change per watched video,
not one per client per poll interval.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

from openv_gateway.adapters.jobs_client import JobsUnavailable
from openv_shared.contracts.queries import VideoView

log = logging.getLogger(__name__)

Fetch = Callable[[UUID], Awaitable[VideoView | None]]


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
    def __init__(self, fetch: Fetch, fallback_s: float) -> None:
        self.fetch = fetch
        self.fallback_s = fallback_s
        self._watches: dict[UUID, Watch] = {}

    def is_watched(self, video_id: UUID) -> bool:
        return video_id in self._watches

    def notify(self, video_id: UUID, version: int | None) -> None:
        watch = self._watches.get(video_id)
        if watch is not None:
            watch.hint(version)

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
            watch = self._watches[video_id] = Watch(video_id, self.fetch, self.fallback_s)
            watch.start()
        watch.refs += 1
        watch.update(known)
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
