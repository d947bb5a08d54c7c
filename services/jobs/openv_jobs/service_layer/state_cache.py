"""States and usages kept between batches, so a batch reads only what it has not seen.

Every decision runs under the append lock. If the log's head read under the lock is the one
this process left behind, nobody appended since, and the cached states and usages are exactly
the log folded. Otherwise the cache starts over. (The idea is the `eventsourcing` library's
aggregate cache, made safe for several writers by the head check.)
"""

from collections import OrderedDict
from collections.abc import Collection
from typing import Generic, TypeVar
from uuid import UUID

from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState

K = TypeVar("K")
Q = TypeVar("Q")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """Least recently *put* first out: every entry a batch read is put back when it commits
    (StateCache.committed), so reads need not reorder, and a failed batch clears the cache."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[K, V] = OrderedDict()

    def put_many(self, entries: dict[K, V]) -> None:
        items = self.items
        items.update(entries)
        move_to_end = items.move_to_end
        for key in entries:
            move_to_end(key)
        while len(items) > self.capacity:
            items.popitem(last=False)


def _split(
    lru: _Lru[K, V], keys: Collection[Q], slots: Collection[K]
) -> tuple[dict[Q, V], list[Q]]:
    """(found entries, missing keys): `slots` are the keys as `lru` holds them, in order."""
    get = lru.items.get
    found: dict[Q, V] = {}
    missing: list[Q] = []
    for key, slot in zip(keys, slots, strict=True):
        value = get(slot)
        if value is None:
            missing.append(key)
        else:
            found[key] = value
    return found, missing


class StateCache:
    """Video states keyed by their id's `int`: a UUID hashes in Python (`UUID.__hash__`),
    an int in C, and the cache hashes every key of a batch twice."""

    def __init__(self, capacity: int) -> None:
        self._videos: _Lru[int, VideoState] = _Lru(capacity)
        self._usages: _Lru[str, Usage] = _Lru(capacity)
        self.head: int | None = None

    def videos(self, ids: Collection[UUID]) -> tuple[dict[UUID, VideoState], list[UUID]]:
        """(cached states, ids not cached)."""
        return _split(self._videos, ids, [video_id.int for video_id in ids])

    def usages(self, users: Collection[str]) -> tuple[dict[str, Usage], list[str]]:
        """(cached usages, users not cached)."""
        return _split(self._usages, users, users)

    def check(self, head: int) -> None:
        """Forget everything unless `head` is the one this cache was left at."""
        if head != self.head:
            self.clear()

    def clear(self) -> None:
        self._videos.items.clear()
        self._usages.items.clear()
        self.head = None

    def committed(
        self, head: int, videos: dict[UUID, VideoState], usages: dict[str, Usage]
    ) -> None:
        """Remember the entries as they are once a transaction committed, leaving the log's
        head at `head`. `videos` and `usages` hold every entry the transaction read."""
        self._videos.put_many({video_id.int: state for video_id, state in videos.items()})
        self._usages.put_many(usages)
        self.head = head
