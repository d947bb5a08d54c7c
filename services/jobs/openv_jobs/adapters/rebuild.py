"""Rebuild every projection from the event log into fresh tables, optionally swapping them in.

The log is folded without locks up to its head, then the append lock is taken, the tail that
arrived meanwhile is folded, and (with `swap`) the fresh tables replace the live ones in the
same transaction, so no event is missed and readers never see a half-built table.
"""

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import asyncpg

from openv_jobs.adapters import projections
from openv_jobs.adapters.event_store import APPEND_LOCK_KEY
from openv_jobs.domain.projection import apply_event
from openv_jobs.domain.usage import Usage, period_of
from openv_jobs.domain.video import VideoState

log = logging.getLogger(__name__)

#: Live table -> its fresh twin while rebuilding.
TABLES: Final = {"videos": "videos_rebuild", "user_usage": "user_usage_rebuild"}
_FETCH = 10_000


@dataclass
class RebuildResult:
    events: int
    videos: int
    users: int
    seconds: float
    swapped: bool

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Fold:
    """In-memory projections, fed events in position order."""

    def __init__(self) -> None:
        self.states: dict[UUID, VideoState] = {}
        self.usages: dict[str, Usage] = {}
        self.position = 0
        self.events = 0

    def feed(self, rows: list[asyncpg.Record]) -> None:
        # This runs once per event of the whole log: locals and no per-event calls it can avoid.
        states, usages, decode = self.states, self.usages, projections.decode_event
        for _, _, type_name, version, data, row_user, at in rows:
            message = decode(type_name, version, data)
            video_id: UUID = message.video_id  # type: ignore[attr-defined]
            state = states.get(video_id)
            user_id = state.user_id if state else (row_user or "")
            usage = usages.get(user_id) or Usage(user_id, 0, period_of(at), 0.0)
            states[video_id], usages[user_id] = apply_event(state, usage, message, user_id, at)
        self.position = rows[-1][0]
        self.events += len(rows)


_SELECT = f"""
    SELECT {projections.EVENT_FOLD_COLUMNS}
    FROM events
    WHERE position > $1 AND position <= $2
      AND ($4 = 1 OR mod(abs(hashtext(coalesce(metadata->>'user_id', ''))), $4) = $3)
    ORDER BY position
"""  # noqa: S608 (constants)

#: Logs at least this long are folded by several processes (below, one: starting a process
#: costs about as much as folding 100,000 events).
PARALLEL_FROM: Final = 200_000


async def _fold_from(
    conn: asyncpg.Connection, fold: _Fold, head: int, part: int, parts: int
) -> None:
    """Feed the partition's events after the fold's position up to `head` (inside the caller's
    transaction), reading the next chunk while the current one is folded: Postgres and Python
    on two cores."""
    cursor = await conn.cursor(_SELECT, fold.position, head, part, parts)
    rows = await cursor.fetch(_FETCH)
    while rows:
        following = asyncio.ensure_future(cursor.fetch(_FETCH))
        await asyncio.sleep(0)  # let it send the request before folding
        fold.feed(rows)
        rows = await following


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The fold builds millions of long-lived objects, none of them in a reference cycle:
    the cyclic collector would only rescan them, again and again. Reference counting still
    frees everything that is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def rebuild(dsn: str, swap: bool = False, parts: int | None = None) -> RebuildResult:
    """`parts`: processes that fold the log, each the events of its share of the users
    (default: one per CPU, up to 4, for logs of PARALLEL_FROM events or more)."""
    with _collector_paused():
        return await _rebuild(dsn, swap, parts)


async def _rebuild(dsn: str, swap: bool, parts: int | None) -> RebuildResult:
    started = time.perf_counter()
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        head = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        if parts is None:
            parts = min(os.cpu_count() or 1, 4) if head >= PARALLEL_FROM else 1
        await _create_staging(conn)
        # The bulk, while appends go on: a user's events all fold in one part (usage is per
        # user), each part writes its own rows.
        events, videos, users = await _fold_parts(dsn, head, parts)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK_KEY)
            tail = await _fold_tail(conn, head)  # what arrived meanwhile
            events, videos, users = events + tail[0], videos + tail[1], users + tail[2]
            if swap:
                await _swap(conn)
    finally:
        await conn.close()
    result = RebuildResult(events, videos, users, time.perf_counter() - started, swap)
    log.info("rebuilt projections: %s", result)
    return result


async def _create_staging(conn: asyncpg.Connection) -> None:
    for live, fresh in TABLES.items():
        await conn.execute(f"DROP TABLE IF EXISTS {fresh}")
        # Staging tables without indexes or WAL: loading is faster, and swapping copies the
        # rows into the live (logged, indexed) tables anyway.
        await conn.execute(f"CREATE UNLOGGED TABLE {fresh} (LIKE {live} INCLUDING DEFAULTS)")


async def _fold_parts(dsn: str, head: int, parts: int) -> tuple[int, int, int]:
    """Fold part 0 here and the others in processes, at the same time."""
    if parts == 1:
        return await _fold_part(dsn, head, 0, 1)
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # no fork of a process with a live loop
    with ProcessPoolExecutor(max_workers=parts - 1, mp_context=context) as pool:
        others = [
            loop.run_in_executor(pool, _fold_part_in_process, dsn, head, part, parts)
            for part in range(1, parts)
        ]
        results = [await _fold_part(dsn, head, 0, parts), *await asyncio.gather(*others)]
    events, videos, users = (sum(column) for column in zip(*results, strict=True))
    return events, videos, users


def _fold_part_in_process(dsn: str, head: int, part: int, parts: int) -> tuple[int, int, int]:
    with _collector_paused():
        return asyncio.run(_fold_part(dsn, head, part, parts))


async def _fold_part(dsn: str, head: int, part: int, parts: int) -> tuple[int, int, int]:
    """Fold one part of the log up to `head` and write its rows into the staging tables."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        fold = _Fold()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await _fold_from(conn, fold, head, part, parts)
        await _write(conn, fold)
        return fold.events, len(fold.states), len(fold.usages)
    finally:
        await conn.close()


async def _fold_tail(conn: asyncpg.Connection, head: int) -> tuple[int, int, int]:
    """Fold the events after `head` into the staged rows (the caller holds the append lock).
    Returns (events, new videos, new users)."""
    rows = await conn.fetch(_SELECT, head, 2**62, 0, 1)
    if not rows:
        return 0, 0, 0
    events = projections.decode_rows(rows)
    fold = _Fold()
    ids = {m.video_id for _, m, _, _ in events}  # type: ignore[attr-defined]
    fold.states = await projections.load_rows(conn, ids, TABLES["videos"])
    users = {s.user_id for s in fold.states.values()} | {user for _, _, user, _ in events}
    fold.usages = await projections.load_usages(conn, users, TABLES["user_usage"])
    known_videos, known_users = len(fold.states), len(fold.usages)
    fold.feed(rows)
    for table, key, keys in (
        (TABLES["videos"], "video_id", list(fold.states)),
        (TABLES["user_usage"], "user_id", list(fold.usages)),
    ):
        await conn.execute(f"DELETE FROM {table} WHERE {key} = ANY($1)", keys)  # noqa: S608 (constants)
    await _write(conn, fold)
    return len(rows), len(fold.states) - known_videos, len(fold.usages) - known_users


async def _write(conn: asyncpg.Connection, fold: _Fold) -> None:
    await conn.copy_records_to_table(
        TABLES["videos"],
        records=map(projections.video_record, fold.states.values()),
        columns=projections.VIDEO_COLUMNS,
    )
    await conn.copy_records_to_table(
        TABLES["user_usage"],
        records=map(projections.usage_record, fold.usages.values()),
        columns=projections.USAGE_COLUMNS,
    )


async def _swap(conn: asyncpg.Connection) -> None:
    # The projector's checkpoint first, as the projector takes it: neither can deadlock.
    await projections.lock_checkpoint(conn, projections.VIDEOS_CHECKPOINT)
    # Copy rather than rename: the live tables keep their names, indexes and constraints.
    for live, fresh in TABLES.items():
        await conn.execute(f"TRUNCATE {live}")
        await conn.execute(f"INSERT INTO {live} SELECT * FROM {fresh}")  # noqa: S608 (constants)
        await conn.execute(f"DROP TABLE {fresh}")
    for name in (projections.VIDEOS_CHECKPOINT, projections.USAGE_CHECKPOINT):
        await conn.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, "
            "(SELECT coalesce(max(position), 0) FROM events)) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            name,
        )
