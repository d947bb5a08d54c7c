"""One way to open a Postgres engine (SQLAlchemy async on asyncpg) from an asyncpg DSN."""

from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from openv_infra.settings import DatabaseSettings


def asyncpg_dsn(settings: DatabaseSettings) -> str:
    return settings.database_url.get_secret_value()


def make_engine(settings: DatabaseSettings) -> AsyncEngine:
    dsn = asyncpg_dsn(settings)
    if dsn.startswith("postgresql://"):
        dsn = "postgresql+asyncpg://" + dsn.removeprefix("postgresql://")
    engine = create_async_engine(
        dsn, pool_size=settings.database_pool_size, max_overflow=5, pool_pre_ping=True
    )
    engine.dialect.do_ping = _ping_once  # type: ignore[method-assign]
    return engine


def _ping_once(dbapi_connection: Any) -> bool:
    """The pool's pre-ping in one round trip: `SELECT 1` in the simple-query protocol.

    SQLAlchemy's asyncpg ping wraps it in BEGIN and ROLLBACK, for pgbouncer's transaction
    pooling: three round trips before every transaction where one does. OpenV talks to
    Postgres directly (asyncpg's statement cache would not work behind a transaction pooler
    anyway). A failure is reported as the adapter's DBAPI error, so the pool recognises a
    disconnect and replaces the connection, as with its own ping.
    """
    try:
        await_(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as error:
        dbapi_connection._handle_exception(error)
    return True


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one, for hot paths that pay per row for
    SQLAlchemy's layers. It runs inside SQLAlchemy's transaction once a statement through
    SQLAlchemy has begun one, and in autocommit before that."""
    raw = await conn.get_raw_connection()
    return cast(asyncpg.Connection, raw.driver_connection)
