"""The webhooks service's schema migrations (Alembic scripts in `openv_webhooks/migrations/`)."""

from pathlib import Path

from openv_infra.migrations import Migrations, module_metadata
from openv_webhooks.adapters import tables
from openv_webhooks.config import Settings

MIGRATIONS = Migrations(
    script_location=Path(__file__).resolve().parent.parent / "migrations",
    metadata=module_metadata(tables),
    # Its own name, so the service can share a database with the others.
    version_table="alembic_version_webhooks",
)


async def upgrade(settings: Settings) -> None:
    """`alembic upgrade head` on the webhooks database (idempotent)."""
    await MIGRATIONS.upgrade_database(settings)


async def check(settings: Settings) -> None:
    """Fail (alembic `CommandError`) unless the database is at head and matches the models."""
    await MIGRATIONS.check_database(settings)
