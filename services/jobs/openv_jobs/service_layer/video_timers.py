"""Times out videos that stay `queued` too long, giving back their slot and quota.

A video leaves `queued` when the bridge reports its RunPod job. If its `VideoAccepted` never
reaches the bridge (dead-lettered by an older release during a rolling deploy, say), or
RunPod takes no job for that long, nothing else would ever end it: it would hold one of its
user's few concurrency slots for good. Every jobs instance runs this; the message each sends
for a video has one id, and its effect is decided under the append lock like any other, so
two instances (or two sweeps) time a video out once.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.domain.timers import QueuedTooLong, queued_too_long_id
from openv_jobs.service_layer.handlers import JobsService
from openv_shared.contracts import Envelope
from openv_shared.contracts.video import VideoStatus

log = logging.getLogger(__name__)

#: Videos timed out per transaction.
BATCH = 200

_QUEUED_BEFORE = sa.text(
    "SELECT video_id, user_id, updated_at FROM videos "
    "WHERE status = :queued AND updated_at < :cutoff ORDER BY updated_at LIMIT :limit"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QueuedTimer:
    def __init__(
        self,
        engine: AsyncEngine,
        service: JobsService,
        limit_s: float,
        interval_s: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.service = service
        self.limit_s = limit_s
        self.interval_s = interval_s
        self.clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the next sweep tries again
                log.exception("timing out queued videos failed")
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> int:
        """Time out up to BATCH videos queued for longer than the limit (the oldest first; the
        next sweep takes the rest); how many it timed out."""
        cutoff = self.clock() - timedelta(seconds=self.limit_s)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    _QUEUED_BEFORE,
                    {"queued": VideoStatus.QUEUED.value, "cutoff": cutoff, "limit": BATCH},
                )
            ).all()
        if not rows:
            return 0
        envelopes = [
            Envelope.wrap(
                QueuedTooLong(video_id=video_id, queued_since=queued_since, limit_s=self.limit_s),
                user_id=user_id,
                event_id=queued_too_long_id(video_id),
            )
            for video_id, user_id, queued_since in rows
        ]
        # The states are read again under the append lock: a video that moved on since the
        # (projected) row was read is left alone.
        recorded = await self.service.handle_batch(envelopes)
        for event in recorded:
            log.warning("video %s stayed queued too long: timed out", event.envelope.stream_id)
        return len(recorded)
