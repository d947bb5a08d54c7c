"""Alembic migration scripts of the jobs service (run by `openv_jobs.adapters.migrations`)."""
