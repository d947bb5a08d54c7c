"""One way to open a Postgres engine (SQLAlchemy async on asyncpg) from an asyncpg DSN."""

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
