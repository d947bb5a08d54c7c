"""Revisions, applied in order by `alembic upgrade`; alembic skips this file."""
