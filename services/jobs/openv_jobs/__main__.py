"""`python -m openv_jobs [serve|migrate]`."""

import asyncio
import sys

from openv_shared.logging import configure_logging
from openv_shared.serve import run_service

from openv_jobs.config import Settings
from openv_jobs.main import create_app, migrate

if __name__ == "__main__":
    settings = Settings()
    if sys.argv[1:2] == ["migrate"]:
        configure_logging("jobs", settings.log_level)
        asyncio.run(migrate(settings))
    else:
        run_service("jobs", settings, create_app)
