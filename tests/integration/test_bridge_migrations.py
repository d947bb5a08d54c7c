"""The bridge's 0002 migration (reconciler columns) and 0003 (lost /run answers) on a real
Postgres: from empty and from older databases with jobs in flight, and back."""

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import SecretStr
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_bridge.adapters import migrations
from openv_bridge.config import Settings
from openv_infra.db import make_engine
from openv_infra.migrations import CONNECTION
from openv_localstack.servers import EmbeddedPostgres

pytestmark = pytest.mark.integration

NEW_COLUMNS = {
    "job_input",
    "accepted_event_id",
    "correlation_id",
    "attempts",
    "lease_until",
    "last_error",
    "submitted_at",
    "last_news_at",
    "polled_at",
    "last_status",
    "last_progress",
}


@pytest.fixture
async def database(postgres: EmbeddedPostgres) -> AsyncIterator[tuple[str, AsyncEngine]]:
    name = f"bridge_mig_{uuid4().hex[:12]}"
    postgres.create_database(name)
    dsn = postgres.dsn_for(name)
    engine = make_engine(Settings(database_url=SecretStr(dsn)))
    try:
        yield dsn, engine
    finally:
        await engine.dispose()


async def columns(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'runpod_submissions'"
        )
    finally:
        await conn.close()
    return {r["column_name"] for r in rows}


async def test_0002_from_empty_matches_the_models(database: tuple[str, AsyncEngine]) -> None:
    dsn, engine = database
    await migrations.MIGRATIONS.upgrade(engine)
    assert await columns(dsn) >= NEW_COLUMNS
    async with engine.connect() as conn:
        version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version_bridge"))
        indexes = await conn.run_sync(
            lambda c: {i["name"]: i for i in sa.inspect(c).get_indexes("runpod_submissions")}
        )
    assert version == "0004"
    assert indexes["runpod_submissions_job_id"]["unique"]
    assert indexes["runpod_submissions_state_news"]["column_names"] == ["state", "last_news_at"]
    await migrations.MIGRATIONS.check(engine)


async def test_0002_keeps_jobs_in_flight_watchable_and_downgrades(
    database: tuple[str, AsyncEngine],
) -> None:
    dsn, engine = database
    await migrations.MIGRATIONS.upgrade(engine, "0001")
    video_id = uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO runpod_submissions (video_id, user_id, object_key, runpod_job_id,"
                " state) VALUES (:v, 'u', 'k', 'job-1', 'submitted')"
            ),
            {"v": video_id},
        )

    await migrations.MIGRATIONS.upgrade(engine)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT * FROM runpod_submissions WHERE video_id = :v"), {"v": video_id}
            )
        ).one()
    # Watched like any job in flight: news "now", so it is polled once it has been quiet.
    assert (row.state, row.runpod_job_id, row.attempts) == ("submitted", "job-1", 0)
    assert row.last_news_at is not None and row.job_input is None
    await migrations.MIGRATIONS.check(engine)

    def downgrade(connection: Connection) -> None:
        config = migrations.MIGRATIONS.config()
        config.attributes[CONNECTION] = connection
        command.downgrade(config, "0001")

    async with engine.begin() as conn:
        await conn.run_sync(downgrade)
    assert not NEW_COLUMNS & await columns(dsn)


async def test_0003_marks_no_existing_submission_ambiguous_and_downgrades(
    database: tuple[str, AsyncEngine],
) -> None:
    dsn, engine = database
    await migrations.MIGRATIONS.upgrade(engine, "0002")
    assert "answer_lost_at" not in await columns(dsn)
    video_id = uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO runpod_submissions (video_id, user_id, object_key, state, attempts)"
                " VALUES (:v, 'u', 'k', 'submitting', 1)"
            ),
            {"v": video_id},
        )

    await migrations.MIGRATIONS.upgrade(engine)
    async with engine.connect() as conn:
        lost_at = await conn.scalar(
            sa.text("SELECT answer_lost_at FROM runpod_submissions WHERE video_id = :v"),
            {"v": video_id},
        )
    assert lost_at is None  # retried as before: nothing says its answer was lost
    await migrations.MIGRATIONS.check(engine)

    def downgrade(connection: Connection) -> None:
        config = migrations.MIGRATIONS.config()
        config.attributes[CONNECTION] = connection
        command.downgrade(config, "0002")

    async with engine.begin() as conn:
        await conn.run_sync(downgrade)
    found = await columns(dsn)
    assert "answer_lost_at" not in found
    assert found >= NEW_COLUMNS
