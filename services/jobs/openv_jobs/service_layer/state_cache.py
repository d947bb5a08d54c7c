"""States and usages kept between batches, so a batch reads only what it has not seen.

Every decision runs under the append lock, and every appending transaction moves the
projections' checkpoint; a rebuild that swaps tables moves their epoch. So if the (checkpoint,
epoch) marker read under the lock equals the one this process left behind, nobody else wrote
since and the cached entries are exactly the projection rows. Otherwise the cache starts over.
(The idea is the `eventsourcing` library's aggregate cache with fast-forward, made safe for
several writers by the marker.)
"""

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar
from uuid import UUID

from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState

K = TypeVar("K")
V = TypeVar("V")

Marker = tuple[int, int]


class _Lru(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[K, V] = OrderedDict()

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """(found entries, missing keys)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            value = self.items.get(key)
            if value is None:
                missing.append(key)
            else:
                self.items.move_to_end(key)
                found[key] = value
        return found, missing

    def put_many(self, entries: dict[K, V]) -> None:
        self.items.update(entries)
        for key in entries:
            self.items.move_to_end(key)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)


class StateCache:
    def __init__(self, capacity: int) -> None:
        self.videos: _Lru[UUID, VideoState] = _Lru(capacity)
        self.usages: _Lru[str, Usage] = _Lru(capacity)
        self.marker: Marker | None = None

    def check(self, marker: Marker) -> None:
        """Forget everything unless `marker` is the one this cache was left at."""
        if marker != self.marker:
            self.clear()

    def clear(self) -> None:
        self.videos.items.clear()
        self.usages.items.clear()
        self.marker = None

    def committed(
        self, marker: Marker, videos: dict[UUID, VideoState], usages: dict[str, Usage]
    ) -> None:
        """Remember the entries as they are once the transaction that read `marker` committed
        (leaving the projections at the new `marker`)."""
        self.videos.put_many(videos)
        self.usages.put_many(usages)
        self.marker = marker
