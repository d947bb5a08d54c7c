"""Times out videos that nothing else would ever end, giving back their slot and quota.

- Still `queued` after `queued_limit_s`: a video leaves `queued` when the bridge reports its
  RunPod job. If its `VideoAccepted` never reaches the bridge (dead-lettered by an older
  release during a rolling deploy, say), or RunPod takes no job for that long, it would hold one
  of its user's few concurrency slots for good.
- `submitted` or `running` with no news for `silent_limit_s`: longer than RunPod keeps a job
  (ttl + execution timeout), so the job's outcome was lost on the way (its fact dead-lettered,
  the bridge's record lost). The bridge cancels the job if it still runs.

Every jobs instance runs this; the message each sends for a video has one id per video (and
silence), and its effect is decided under the append lock like any other, so two instances (or
two sweeps) time a video out once, and news that arrived meanwhile wins.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from openv_contracts import Envelope
from openv_jobs.domain.timers import (
    QueuedTooLong,
    SilentTooLong,
    queued_too_long_id,
    silent_too_long_id,
)
from openv_jobs.service_layer.jobs_service import JobsService

log = logging.getLogger(__name__)

#: Videos timed out per transaction.
BATCH = 200

#: A video that may be stuck: its id, its user, and since when it is in its status.
Candidate = tuple[UUID, str, datetime]


class StuckVideos(Protocol):
    """Where the timers find candidates (adapters/stuck_videos.py: the `videos` projection,
    which may lag: the decision reads the states again)."""

    async def queued_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        """Up to `limit` videos `queued` since before `cutoff`, the oldest first."""

    async def silent_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        """Up to `limit` videos `submitted` or `running` with no news since before `cutoff`,
        the oldest first."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VideoTimers:
    def __init__(
        self,
        videos: StuckVideos,
        service: JobsService,
        queued_limit_s: float,
        silent_limit_s: float,
        interval_s: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.videos = videos
        self.service = service
        self.queued_limit_s = queued_limit_s
        self.silent_limit_s = silent_limit_s
        self.interval_s = interval_s
        self.clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the next sweep tries again
                log.exception("timing out stuck videos failed")
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> int:
        """Time out up to BATCH videos of each kind (the oldest first; the next sweep takes
        the rest); how many it timed out."""
        queued = [
            Envelope.wrap(
                QueuedTooLong(video_id=video_id, queued_since=since, limit_s=self.queued_limit_s),
                user_id=user_id,
                event_id=queued_too_long_id(video_id),
            )
            for video_id, user_id, since in await self.videos.queued_before(
                self._cutoff(self.queued_limit_s), BATCH
            )
        ]
        silent = [
            Envelope.wrap(
                SilentTooLong(video_id=video_id, silent_since=since, limit_s=self.silent_limit_s),
                user_id=user_id,
                event_id=silent_too_long_id(video_id, since),
            )
            for video_id, user_id, since in await self.videos.silent_before(
                self._cutoff(self.silent_limit_s), BATCH
            )
        ]
        envelopes = queued + silent
        if not envelopes:
            return 0
        # The states are read again under the append lock: a video that moved on since the
        # (projected) row was read is left alone.
        recorded = await self.service.handle_batch(envelopes)
        for event in recorded:
            log.warning("video %s was stuck: timed out", event.envelope.stream_id)
        return len(recorded)

    def _cutoff(self, limit_s: float) -> datetime:
        return self.clock() - timedelta(seconds=limit_s)
