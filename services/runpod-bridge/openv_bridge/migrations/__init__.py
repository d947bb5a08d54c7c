"""Alembic migration scripts of the RunPod bridge (run by `openv_bridge.adapters.migrations`)."""
