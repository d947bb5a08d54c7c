"""Alembic environment of the RunPod bridge: all of it lives in `openv_bridge.adapters.migrations`.

`upgrade` and `check` there run it on their own connection. Called without one, e.g.
`alembic.command.revision(MIGRATIONS.config(), "message", autogenerate=True)` for a new
revision, it opens the database of `Settings()` (OPENV_DATABASE_URL).
"""

from openv_bridge.adapters.migrations import MIGRATIONS
from openv_bridge.config import Settings
from openv_infra.db import make_engine

MIGRATIONS.run_env(lambda: make_engine(Settings()))
