"""The jobs service's schema migrations (Alembic scripts in `openv_jobs/migrations/`)."""

from pathlib import Path

from openv_infra.migrations import Baseline, Migrations, module_metadata
from openv_jobs.adapters import tables
from openv_jobs.config import Settings

MIGRATIONS = Migrations(
    script_location=Path(__file__).resolve().parent.parent / "migrations",
    metadata=module_metadata(tables),
    version_table="alembic_version",
    # Databases made by `python -m openv_jobs migrate` before Alembic (SQLModel create_all).
    baseline=Baseline(
        "0001",
        frozenset({"events", "processed_messages", "videos", "user_usage", "checkpoints"}),
    ),
)


async def upgrade(settings: Settings) -> None:
    """`alembic upgrade head` on the jobs database (idempotent)."""
    await MIGRATIONS.upgrade_database(settings)


async def check(settings: Settings) -> None:
    """Fail (alembic `CommandError`) unless the database is at head and matches the models."""
    await MIGRATIONS.check_database(settings)
