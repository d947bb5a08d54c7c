"""The jobs service's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

import asyncio
import contextlib
import logging

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters.event_store import RecordedEvent

log = logging.getLogger(__name__)

EVENTS_RECORDED = Counter("openv_jobs_events_recorded_total", "Events appended", ["type"])
DECISIONS = Counter(
    "openv_jobs_decisions_total", "Video requests decided", ["outcome"]
)  # accepted, or the rejection code
RELAY_LAG = Gauge("openv_jobs_relay_lag_events", "Events stored but not yet relayed")
VIDEOS = Gauge("openv_jobs_videos", "Videos by status (refreshed periodically)", ["status"])


def count(recorded: list[RecordedEvent]) -> None:
    for event in recorded:
        env = event.envelope
        EVENTS_RECORDED.labels(env.type).inc()
        if env.type == "VideoAccepted":
            DECISIONS.labels("accepted").inc()
        elif env.type == "VideoRejected":
            DECISIONS.labels(str(env.data.get("code", "unknown"))).inc()


async def refresh_video_counts(engine: AsyncEngine, every_s: float = 15.0) -> None:
    """Keep the per-status gauge fresh without a database query per scrape."""
    while True:
        with contextlib.suppress(Exception):
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text("SELECT status, count(*) AS n FROM videos GROUP BY status")
                )
                for row in rows:
                    VIDEOS.labels(row.status).set(row.n)
        await asyncio.sleep(every_s)
