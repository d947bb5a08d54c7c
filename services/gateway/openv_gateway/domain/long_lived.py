"""Per-user count of long-lived requests (SSE streams, `Prefer: wait`, `DELETE ?wait`) held
open on this instance, at most `limit` each (pure)."""

from collections.abc import Iterator
from contextlib import contextmanager


class TooManyOpen(Exception):
    pass


class OpenRequests:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        # Only users with something open have an entry: memory follows open connections.
        self._open: dict[str, int] = {}

    def acquire(self, user_id: str) -> None:
        """Count one more open request of `user_id`; TooManyOpen when at the limit."""
        count = self._open.get(user_id, 0)
        if count >= self.limit:
            raise TooManyOpen(user_id)
        self._open[user_id] = count + 1

    def release(self, user_id: str) -> None:
        count = self._open.get(user_id, 0) - 1
        if count > 0:
            self._open[user_id] = count
        else:
            self._open.pop(user_id, None)

    def open(self, user_id: str) -> int:
        return self._open.get(user_id, 0)

    def __len__(self) -> int:
        """Users with at least one open request."""
        return len(self._open)

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        self.acquire(user_id)
        try:
            yield
        finally:
            self.release(user_id)
