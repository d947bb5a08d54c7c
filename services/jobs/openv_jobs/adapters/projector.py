"""The `videos` projection, written behind the log.

Deciding and appending do not wait for it: a batch of events is folded into the rows it
touches (several events of one video become one row write) and written with the checkpoint in
one transaction. Readers never see its lag (projections.load_states folds the rest), and the
row version guard means a late or repeated batch never moves a row backwards.
"""

import logging
from typing import Final

import asyncpg

from openv_jobs.adapters import metrics, projections
from openv_jobs.adapters.follower import LogFollower

log = logging.getLogger(__name__)

PROJECTOR_LEADER_KEY: Final = 0x0E_5E_0003

_AFTER = f"""
    SELECT {projections.EVENT_FOLD_COLUMNS} FROM events
    WHERE position > $1 ORDER BY position LIMIT $2
"""  # noqa: S608 (constants)


class Projector(LogFollower):
    LEADER_KEY = PROJECTOR_LEADER_KEY
    BATCH_SIZE = 5_000

    async def step(self, conn: asyncpg.Connection) -> int:
        async with conn.transaction():
            # Locked: a rebuild swapping the tables in waits for this batch, or the reverse.
            checkpoint = await projections.lock_checkpoint(conn, projections.VIDEOS_CHECKPOINT)
            rows = await conn.fetch(_AFTER, checkpoint, self.batch_size)
            if not rows:
                metrics.PROJECTION_LAG.set(0)
                return 0
            events = projections.decode_rows(rows)
            ids = {message.video_id for _, message, _, _ in events}  # type: ignore[attr-defined]
            states = await projections.load_rows(conn, ids)
            projections.fold_into(states, events)
            await projections.save_videos(conn, list(states.values()), rows[-1][0])
            head = await projections.log_head(conn)
        metrics.PROJECTION_LAG.set(max(0, head - rows[-1][0]))
        return len(rows)
