"""The shared engine's pre-ping over a real Postgres: one round trip, and a dropped connection
is still replaced on checkout."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_infra.db import driver_connection, make_engine
from openv_infra.settings import DatabaseSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def one_connection_engine(jobs_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(DatabaseSettings(database_url=jobs_dsn, database_pool_size=1))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_a_checkout_pings_with_one_statement(one_connection_engine: AsyncEngine) -> None:
    async with one_connection_engine.connect() as conn:
        pg = await driver_connection(conn)
        logged: list[str] = []

        def log(record: Any) -> None:
            logged.append(record.query)

        pg.add_query_logger(log)
    async with one_connection_engine.connect() as conn:  # the same connection, pinged
        assert await driver_connection(conn) is pg
        await conn.execute(sa.text("SELECT 2"))
    # The ping, then the body's own transaction (SQLAlchemy's ping was BEGIN, `;`, ROLLBACK).
    assert logged[:2] == ["SELECT 1", "BEGIN;"]


async def test_a_connection_dropped_while_pooled_is_replaced_on_checkout(
    one_connection_engine: AsyncEngine, jobs_dsn: str
) -> None:
    async with one_connection_engine.connect() as conn:
        pid = (await driver_connection(conn)).get_server_pid()
    admin = await asyncpg.connect(jobs_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    async with one_connection_engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar() != pid
