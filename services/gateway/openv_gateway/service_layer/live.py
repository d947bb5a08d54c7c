"""Live status: the videos this instance's clients look at, kept current by the video feed.

The feed folds every event of a known video onto its view (`openv_contracts.video_views`), so
a read, a stream or a waiter learns a change from the topic itself, never by asking the jobs
service; the jobs service is read only on a miss (one read in flight per video however many
clients ask), when an event cannot be folded (a gap, an unknown type), and while the feed does
not follow the topic (starting, reconnecting), at the fallback rate.

Whoever waits on a video (a create waiting for its decision, `Prefer: wait`, a cancel or a
delete waiting for its outcome, an SSE stream) holds a *watch* on it: at most one per video
per instance, which tells its waiters and listeners each newer view.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from openv_contracts import Envelope
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video_views import next_view
from openv_gateway.service_layer.known_videos import KnownVideos

log = logging.getLogger(__name__)

Fetch = Callable[[UUID], Awaitable[VideoView | None]]
#: Told each newer view of a watched video (must not block: it runs in the feed's step).
Listener = Callable[[VideoView], None]


class Watch:
    """The latest known state of one video, and a signal fired whenever it changes."""

    def __init__(
        self,
        video_id: UUID,
        fetch: Fetch,
        fallback_s: float,
        trusted: Callable[[], bool] = lambda: False,
        trusted_interval_s: float = 30.0,
    ) -> None:
        self.video_id = video_id
        self.view: VideoView | None = None
        self.refs = 0
        self._fetch = fetch
        self._fallback_s = fallback_s
        self._trusted = trusted
        self._trusted_interval_s = trusted_interval_s
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
        last_read = time.monotonic()
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for may swallow a cancel that lands
            # as the event is set, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._fallback_s):
                    await self._wake.wait()
            if self._stopping:
                return
            # While the feed follows it brings every change: no re-read at the fallback rate,
            # only the safety net's (a record a broker lost without the consumer noticing).
            quiet = time.monotonic() - last_read < self._trusted_interval_s
            if not self._wake.is_set() and self._trusted() and quiet:
                continue
            last_read = time.monotonic()
            self._wake.clear()
            try:
                await self.refresh()
            except JobsUnavailable as exc:
                log.debug("re-reading video %s failed: %s", self.video_id, exc)
            except Exception:
                log.exception("re-reading video %s failed", self.video_id)


class _Load:
    """A read of one video from the jobs service in flight, shared by everyone who asks
    meanwhile; the feed's records of that video wait here until it returns."""

    __slots__ = ("records", "stale", "task")

    def __init__(self) -> None:
        self.records: list[tuple[int | None, Envelope | None]] = []
        self.stale = False
        self.task: asyncio.Future[VideoView | None] | None = None


class LiveVideos:
    def __init__(
        self,
        fetch: Fetch,
        fallback_s: float,
        recent_size: int = 10_000,
        trusted_ttl_s: float = 30.0,
    ) -> None:
        self.fetch = fetch
        self.fallback_s = fallback_s
        self.trusted_ttl_s = trusted_ttl_s
        self.known = KnownVideos(recent_size, fallback_s, trusted_ttl_s)
        self._watches: dict[UUID, Watch] = {}
        self._loads: dict[UUID, _Load] = {}
        # The newest version the feed reported of a video it could not fold (bounded).
        self._reported: OrderedDict[UUID, int] = OrderedDict()
        self.loads = 0

    def is_watched(self, video_id: UUID) -> bool:
        return video_id in self._watches

    def follows(self, video_id: UUID) -> bool:
        """Whether the feed's records of `video_id` matter here (watched, kept or loading)."""
        return video_id in self._watches or video_id in self.known or video_id in self._loads

    # The feed's side.

    def feed_following(self) -> None:
        """The feed follows the topic from its end: every later event of a known video will
        reach us. Views kept before may have missed events while it was away: forget them,
        and have every watch read its video again."""
        self.known.clear()
        self._reported.clear()
        for load in self._loads.values():
            load.stale = True
        self.known.trusted = True
        for watch in self._watches.values():
            watch.hint(None)

    def feed_lost(self) -> None:
        self.known.trusted = False

    def notify(self, video_id: UUID, version: int | None, envelope: Envelope | None = None) -> None:
        """The feed saw an event of `video_id` at `version` (None: it could not read it)."""
        load = self._loads.get(video_id)
        if load is not None:
            load.records.append((version, envelope))
        held = self._newest(video_id)
        if held is None and load is not None:
            return  # folded onto what the load returns
        if version is not None and held is not None and version <= held.version:
            return  # held already (or an old record a restarted feed read again)
        view = next_view(held, envelope) if envelope is not None else None
        if view is not None:
            self._set(view)
            return
        # Not foldable (a gap, an unknown type, an unreadable record): ask the jobs service.
        if version is not None:
            _put(self._reported, video_id, max(version, self._reported.get(video_id, 0)))
            while len(self._reported) > self.known.size:
                self._reported.popitem(last=False)
        self.known.drop(video_id)
        watch = self._watches.get(video_id)
        if watch is not None:
            watch.hint(version)

    # Reads.

    async def read(self, video_id: UUID) -> VideoView | None:
        """The video as kept here if it may be served, else as the jobs service has it."""
        return self.servable(video_id) or await self.load(video_id)

    def servable(self, video_id: UUID) -> VideoView | None:
        """The video as kept here if it may be served now (no I/O), else None."""
        view = self.known.get(video_id)
        if view is not None:
            return view
        watch = self._watches.get(video_id)
        if watch is not None and watch.view is not None and self.known.trusted:
            return watch.view
        return None

    async def load(self, video_id: UUID) -> VideoView | None:
        """Read the video from the jobs service (raises JobsUnavailable): one read in flight
        per video however many ask, and a caller who leaves does not cancel it for others."""
        load = self._loads.get(video_id)
        if load is None:
            load = self._loads[video_id] = _Load()
            load.task = asyncio.ensure_future(self._load(video_id, load))
        assert load.task is not None
        return await asyncio.shield(load.task)

    async def _load(self, video_id: UUID, load: _Load) -> VideoView | None:
        self.loads += 1
        try:
            view = await self.fetch(video_id)
        finally:
            if self._loads.get(video_id) is load:
                del self._loads[video_id]
        if load.stale:  # read before the feed last (re)started following: do not keep it
            return view
        if view is not None and view.version >= self._reported.get(video_id, 0):
            self._set(view)
        for version, envelope in load.records:
            self.notify(video_id, version, envelope)
        newest = self._newest(video_id)
        if view is None or (newest is not None and newest.version > view.version):
            return newest
        return view

    def remember(self, view: VideoView) -> None:
        """Keep `view` (a state this instance learnt otherwise) if it is the newest known."""
        if view.version >= self._reported.get(view.id, 0):
            self._set(view)

    def _newest(self, video_id: UUID) -> VideoView | None:
        kept = self.known.peek(video_id)
        watch = self._watches.get(video_id)
        watched = watch.view if watch is not None else None
        if kept is None or (watched is not None and watched.version > kept.version):
            return watched
        return kept

    def _set(self, view: VideoView) -> None:
        self.known.put(view)
        watch = self._watches.get(view.id)
        if watch is not None:
            watch.update(view)

    # Watches.

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
            watch = Watch(
                video_id, self.load, self.fallback_s, lambda: self.known.trusted, self.trusted_ttl_s
            )
            self._watches[video_id] = watch
            watch.update(self.known.peek(video_id))
            watch.start()
        watch.refs += 1
        if known is not None:
            self.remember(known)
        try:
            yield watch
        finally:
            watch.refs -= 1
            if watch.refs == 0:
                if self._watches.get(video_id) is watch:
                    del self._watches[video_id]
                    if watch.view is not None:
                        self.remember(watch.view)
                watch.stop()

    async def close(self, timeout_s: float = 2.0) -> None:
        watches, self._watches = list(self._watches.values()), {}
        tasks: set[asyncio.Future[Any]] = {t for t in (w.stop() for w in watches) if t}
        for load in self._loads.values():
            if load.task is not None:
                load.task.cancel()
                tasks.add(load.task)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)


K = TypeVar("K")
V = TypeVar("V")


def _put(entries: OrderedDict[K, V], key: K, value: V) -> None:
    entries[key] = value
    entries.move_to_end(key)
