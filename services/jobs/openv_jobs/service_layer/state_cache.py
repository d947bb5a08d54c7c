"""States and usages kept between batches, so a batch reads only what it has not seen.

Every decision runs under the append lock. If the log's head read under the lock is the one
this process left behind, nobody appended since, and the cached states and usages are exactly
the log folded. Otherwise the cache starts over. (The idea is the `eventsourcing` library's
aggregate cache, made safe for several writers by the head check.)
"""

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar
from uuid import UUID

from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState

K = TypeVar("K")
V = TypeVar("V")


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
        self.head: int | None = None

    def check(self, head: int) -> None:
        """Forget everything unless `head` is the one this cache was left at."""
        if head != self.head:
            self.clear()

    def clear(self) -> None:
        self.videos.items.clear()
        self.usages.items.clear()
        self.head = None

    def committed(
        self, head: int, videos: dict[UUID, VideoState], usages: dict[str, Usage]
    ) -> None:
        """Remember the entries as they are once a transaction committed, leaving the log's
        head at `head`."""
        self.videos.put_many(videos)
        self.usages.put_many(usages)
        self.head = head
