"""Alembic migration scripts of the webhooks service (run by `adapters.migrations`)."""
