"""Alembic environment of the webhooks service: all of it is in `adapters.migrations`.

`upgrade` and `check` there run it on their own connection. Called without one, e.g.
`alembic.command.revision(MIGRATIONS.config(), "message", autogenerate=True)` for a new
revision, it opens the database of `Settings()` (OPENV_DATABASE_URL).
"""

from openv_infra.db import make_engine
from openv_webhooks.adapters.migrations import MIGRATIONS
from openv_webhooks.config import Settings

MIGRATIONS.run_env(lambda: make_engine(Settings()))
