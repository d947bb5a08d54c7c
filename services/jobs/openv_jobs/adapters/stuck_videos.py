"""The video timers' look-ups (service_layer/video_timers.StuckVideos) on the `videos`
projection, each matching a partial index (`videos_queued_since`, `videos_in_flight_since`)."""

from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.service_layer.video_timers import Candidate

_QUEUED_BEFORE: Final = sa.text(
    "SELECT video_id, user_id, updated_at FROM videos "
    "WHERE status = 'queued' AND updated_at < :cutoff ORDER BY updated_at LIMIT :limit"
)
_SILENT_BEFORE: Final = sa.text(
    "SELECT video_id, user_id, updated_at FROM videos "
    "WHERE status IN ('submitted', 'running') AND updated_at < :cutoff "
    "ORDER BY updated_at LIMIT :limit"
)


class PostgresStuckVideos:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def queued_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        return await self._rows(_QUEUED_BEFORE, cutoff, limit)

    async def silent_before(self, cutoff: datetime, limit: int) -> list[Candidate]:
        return await self._rows(_SILENT_BEFORE, cutoff, limit)

    async def _rows(self, query: sa.TextClause, cutoff: datetime, limit: int) -> list[Candidate]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(query, {"cutoff": cutoff, "limit": limit})
            return [(video_id, user_id, since) for video_id, user_id, since in rows]
