"""One way to open a Postgres engine (SQLAlchemy async on asyncpg) from an asyncpg DSN."""

from typing import cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from openv_shared.settings import DatabaseSettings


def asyncpg_dsn(settings: DatabaseSettings) -> str:
    return settings.database_url.get_secret_value()


def make_engine(settings: DatabaseSettings) -> AsyncEngine:
    dsn = asyncpg_dsn(settings)
    if dsn.startswith("postgresql://"):
        dsn = "postgresql+asyncpg://" + dsn.removeprefix("postgresql://")
    return create_async_engine(
        dsn, pool_size=settings.database_pool_size, max_overflow=5, pool_pre_ping=True
    )


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one, for hot paths that pay per row for
    SQLAlchemy's layers. It runs inside SQLAlchemy's transaction once a statement through
    SQLAlchemy has begun one, and in autocommit before that."""
    raw = await conn.get_raw_connection()
    return cast(asyncpg.Connection, raw.driver_connection)
