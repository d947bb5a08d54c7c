"""Keeps the per-status video gauge (metrics.VIDEOS) fresh from the `videos` projection."""

import asyncio
import contextlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters.metrics import VIDEOS


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
