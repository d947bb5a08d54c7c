"""The RunPod bridge's schema migrations (Alembic scripts in `openv_bridge/migrations/`)."""

from pathlib import Path

from openv_bridge.adapters import submission_table
from openv_bridge.config import Settings
from openv_infra.migrations import Baseline, Migrations, module_metadata

MIGRATIONS = Migrations(
    script_location=Path(__file__).resolve().parent.parent / "migrations",
    metadata=module_metadata(submission_table),
    # Its own name, so the bridge can share a database with the jobs service.
    version_table="alembic_version_bridge",
    # Databases where the bridge created its table at startup before Alembic (create_all).
    baseline=Baseline("0001", frozenset({"runpod_submissions"})),
)


async def upgrade(settings: Settings) -> None:
    """`alembic upgrade head` on the bridge database (idempotent)."""
    await MIGRATIONS.upgrade_database(settings)


async def check(settings: Settings) -> None:
    """Fail (alembic `CommandError`) unless the database is at head and matches the models."""
    await MIGRATIONS.check_database(settings)
