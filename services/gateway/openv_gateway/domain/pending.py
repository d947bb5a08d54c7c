"""Requests this instance published but the jobs service has not decided yet.

Remembered for a short while so that a GET right after a `pending` answer says `pending`
rather than a confusing 404. Pure: the caller passes the clock reading.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from openv_contracts.video import VideoParams


@dataclass(frozen=True)
class PendingVideo:
    video_id: UUID
    user_id: str
    prompt: str
    params: VideoParams
    received_at: datetime


class PendingRequests:
    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[UUID, tuple[float, PendingVideo]] = OrderedDict()

    def add(self, video: PendingVideo, now: float) -> None:
        if self.ttl_s <= 0:
            return
        self._expire(now)
        self._entries[video.video_id] = (now + self.ttl_s, video)
        self._entries.move_to_end(video.video_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, video_id: UUID, now: float) -> PendingVideo | None:
        entry = self._entries.get(video_id)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def discard(self, video_id: UUID) -> None:
        self._entries.pop(video_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            expires, _ = next(iter(self._entries.values()))
            if expires > now:
                break
            self._entries.popitem(last=False)
