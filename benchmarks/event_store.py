"""Benchmark of the jobs service's event store (a script, not a test).

1. Appends through the decision path (JobsService.handle_batch: dedupe, decide, append, project,
   in consumer-sized batches) against raw asyncpg `executemany` of the same event rows, in the
   same run on the same embedded Postgres; prints events/s and the ratio. Then the `videos`
   projector catching up on those events (it runs behind the log, beside the decisions).
2. Rebuild of every projection from a log of N synthetic events (default 1,000,000).

    .venv/bin/python benchmarks/event_store.py [--commands 20000] [--rebuild-events 1000000]
        [--rounds 5]

Each round runs both paths in fresh databases, one after the other, after a warm-up round that
is not counted; the ratio printed last is the median of the rounds'.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg

from openv_contracts import Envelope, Message
from openv_contracts.commands import RequestVideo
from openv_contracts.events import (
    VideoAccepted,
    VideoCompleted,
    VideoProgressed,
    VideoRunning,
    VideoSubmitted,
    video_stream_id,
)
from openv_contracts.facts import RunPodJobSubmitted
from openv_contracts.video import VideoParams
from openv_infra.db import make_engine
from openv_infra.serve import tune_gc
from openv_jobs.adapters.postgres_recorder import PostgresRecorder
from openv_jobs.adapters.projector import Projector
from openv_jobs.adapters.rebuild import rebuild
from openv_jobs.config import Settings
from openv_jobs.domain.usage import Limits
from openv_jobs.main import migrate
from openv_jobs.service_layer.jobs_service import JobsService
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres

BATCH = 500
_COLUMNS = [
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "metadata",
    "occurred_at",
]


async def fresh_db(pg: EmbeddedPostgres, name: str) -> str:
    pg.create_database(name)
    dsn = pg.dsn_for(name)
    await migrate(Settings(database_url=dsn))
    return dsn


async def decision_path(dsn: str, commands: int) -> tuple[float, int]:
    engine = make_engine(Settings(database_url=dsn))
    service = JobsService(PostgresRecorder(engine), Limits(max_active_jobs=3, quota_seconds=1e9))
    requests = [
        Envelope.wrap(
            RequestVideo(video_id=uuid4(), prompt="bench", params=VideoParams(seed=i)),
            user_id=f"user-{i // 2}",
        )
        for i in range(commands)
    ]
    facts = [
        Envelope.wrap(
            RunPodJobSubmitted(video_id=r.data["video_id"], runpod_job_id=f"j{i}"),
            user_id=r.user_id,
        )
        for i, r in enumerate(requests)
    ]
    started = time.perf_counter()
    appended = 0
    for stream in (requests, facts):
        for i in range(0, len(stream), BATCH):
            appended += len(await service.handle_batch(stream[i : i + BATCH]))
    elapsed = time.perf_counter() - started
    await service.close()
    await engine.dispose()
    return elapsed, appended


async def projector_catch_up(dsn: str) -> tuple[float, int]:
    started = time.perf_counter()
    projected = await Projector(dsn).catch_up()
    return time.perf_counter() - started, projected


async def raw_executemany(source_dsn: str, target_dsn: str) -> tuple[float, int]:
    src = await asyncpg.connect(source_dsn)
    rows = await src.fetch(
        "SELECT event_id, stream_id, stream_version, event_type, schema_version, "
        "data::text, metadata::text, occurred_at FROM events ORDER BY position"
    )
    await src.close()
    records = [tuple(r) for r in rows]
    conn = await asyncpg.connect(target_dsn)
    sql = (
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, "
        "data, metadata, occurred_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)"
    )
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        async with conn.transaction():
            await conn.executemany(sql, records[i : i + BATCH])
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed, len(records)


def _synthetic_stream(user: str, at: datetime) -> list[tuple[object, ...]]:
    video_id = uuid4()
    params = VideoParams(seed=1)
    chain: list[Message] = [
        VideoAccepted(
            video_id=video_id,
            prompt="bench",
            params=params,
            duration_seconds=params.duration_seconds,
            charged_seconds=params.duration_seconds,
            object_prefix=f"videos/{user}/{video_id}/",
        ),
        VideoSubmitted(video_id=video_id, runpod_job_id="j"),
        VideoRunning(video_id=video_id, progress=10),
        VideoProgressed(video_id=video_id, progress=60),
        VideoCompleted(video_id=video_id, object_key="k", size_bytes=1000),
    ]
    meta = json.dumps({"user_id": user})
    return [
        (
            uuid4(),
            video_stream_id(video_id),
            n,
            m.TYPE,
            m.VERSION,
            m.model_dump_json(),
            meta,
            at,
        )
        for n, m in enumerate(chain, start=1)
    ]


async def rebuild_speed(dsn: str, events: int) -> tuple[float, int, float]:
    conn = await asyncpg.connect(dsn)
    at = datetime.now(UTC) - timedelta(hours=1)
    load_started = time.perf_counter()
    written = 0
    while written < events:
        chunk: list[tuple[object, ...]] = []
        while len(chunk) < 50_000 and written + len(chunk) < events:
            chunk.extend(_synthetic_stream(f"user-{(written + len(chunk)) % 5000}", at))
        await conn.copy_records_to_table("events", records=chunk, columns=_COLUMNS)
        written += len(chunk)
    load_seconds = time.perf_counter() - load_started
    await conn.close()
    result = await rebuild(dsn, swap=False)
    return result.seconds, result.events, load_seconds


async def append_round(pg: EmbeddedPostgres, name: str, commands: int) -> tuple[float, float]:
    """One round in fresh databases: the decision path, then raw executemany of its rows.
    Returns (decision events/s, raw rows/s)."""
    decide_dsn = await fresh_db(pg, f"{name}_decide")
    raw_dsn = await fresh_db(pg, f"{name}_raw")
    d_s, d_n = await decision_path(decide_dsn, commands)
    r_s, r_n = await raw_executemany(decide_dsn, raw_dsn)
    return d_n / d_s, r_n / r_s


async def main(commands: int, rebuild_events: int, rounds: int) -> None:
    tune_gc()  # as every service process runs (openv_infra.serve.run_service)
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        try:
            # Warm-up for both paths (imports, pydantic's and asyncpg's first-use work, the
            # server's caches): a service runs for days, so the steady state is what counts.
            cold_d, cold_r = await append_round(pg, "warmup", max(BATCH, commands // 10))
            print(f"warm-up (not counted): decision {cold_d:,.0f}/s, raw {cold_r:,.0f}/s")
            ratios: list[float] = []
            for n in range(1, rounds + 1):
                d_rate, r_rate = await append_round(pg, f"round{n}", commands)
                ratios.append(d_rate / r_rate)
                print(
                    f"round {n}: decision path, batches of {BATCH}: {d_rate:,.0f} events/s; "
                    f"raw executemany, same rows/batches: {r_rate:,.0f} rows/s; "
                    f"ratio {d_rate / r_rate:.2f}"
                )
            print(
                f"ratio decision/raw, median of {rounds} rounds: {statistics.median(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target >= 0.50)"
            )
            last_dsn = pg.dsn_for(f"round{rounds}_decide")
            p_s, p_n = await projector_catch_up(last_dsn)
            p_rate = p_n / p_s
            print(
                f"videos projector catching up on the last round: {p_n} events, {p_s:.2f} s, "
                f"{p_rate:,.0f}/s (in the service it runs beside the decisions)"
            )
            rebuild_dsn = await fresh_db(pg, "bench_rebuild")
            b_s, b_n, load_s = await rebuild_speed(rebuild_dsn, rebuild_events)
            print(f"(loaded {b_n} synthetic events with COPY in {load_s:.1f} s)")
            rate = b_n / b_s
            print(f"projection rebuild: {b_n} events, {b_s:.2f} s, {rate:,.0f}/s (target 50,000)")
        finally:
            pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.commands, args.rebuild_events, args.rounds))
