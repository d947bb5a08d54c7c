"""The current state of the videos this instance's clients look at, bounded in memory.

A view here is served to reads without asking the jobs service: the video feed applies each
event of a known video to it (`openv_contracts.video_views.next_view`), so it is as current as
the feed. That holds only while the feed follows the topic; until it does (starting, or
reconnecting after a failure, when records may have been missed), a view is served for at most
`untrusted_ttl_s` after it was stored, as the gateway did before it folded events. While it
follows, a view unchanged for `trusted_ttl_s` is read again all the same (a safety net for
records a broker lost without the consumer noticing).
Views only move forward: a view older than the one kept is never stored.
"""

import time
from collections import OrderedDict
from uuid import UUID

from openv_contracts.queries import VideoView


class KnownVideos:
    def __init__(self, size: int, untrusted_ttl_s: float, trusted_ttl_s: float = 30.0) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.untrusted_ttl_s = untrusted_ttl_s
        #: Even while the feed follows, a view unchanged this long is read again: a broker
        #: restart can lose records without the consumer ever failing (seen in the fault
        #: suite), and a lost last event of a video would otherwise never be noticed.
        self.trusted_ttl_s = trusted_ttl_s
        #: Whether the feed follows the topic (every event of a known video reaches us).
        self.trusted = False
        # video id -> (view, when it was stored), least recently used first.
        self._views: OrderedDict[UUID, tuple[VideoView, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._views)

    def __contains__(self, video_id: UUID) -> bool:
        return video_id in self._views

    def peek(self, video_id: UUID) -> VideoView | None:
        """The kept view however old (for folding the next event onto it)."""
        entry = self._views.get(video_id)
        return entry[0] if entry is not None else None

    def get(self, video_id: UUID) -> VideoView | None:
        """The view if it may be served now."""
        entry = self._views.get(video_id)
        if entry is None:
            return None
        ttl = self.trusted_ttl_s if self.trusted else self.untrusted_ttl_s
        if time.monotonic() - entry[1] > ttl:
            return None
        self._views.move_to_end(video_id)
        return entry[0]

    def put(self, view: VideoView) -> bool:
        """Keep `view` unless a newer one is kept (the same version again: confirmed now);
        True when kept."""
        entry = self._views.get(view.id)
        if entry is not None and entry[0].version > view.version:
            return False
        self._views[view.id] = (view, time.monotonic())
        self._views.move_to_end(view.id)
        while len(self._views) > self.size:
            self._views.popitem(last=False)
        return True

    def drop(self, video_id: UUID) -> None:
        self._views.pop(video_id, None)

    def clear(self) -> None:
        self._views.clear()
