"""`python -m openv_jobs [serve | migrate | rebuild [--swap]]`.

`rebuild` folds the whole event log into fresh projection tables (`videos_rebuild`,
`user_usage_rebuild`); with `--swap` they replace the live ones atomically.
"""

import argparse
import asyncio

from openv_infra.logging import configure_logging
from openv_infra.serve import run_service
from openv_jobs.config import Settings
from openv_jobs.main import create_app, migrate, rebuild_projections


def main() -> None:
    parser = argparse.ArgumentParser(prog="openv_jobs")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate", "rebuild"]
    )
    parser.add_argument("--swap", action="store_true", help="rebuild: replace the live tables")
    args = parser.parse_args()
    settings = Settings()
    if args.command == "serve":
        run_service("jobs", settings, create_app)
        return
    configure_logging("jobs", settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
    else:
        result = asyncio.run(rebuild_projections(settings, swap=args.swap))
        print(
            f"rebuilt from {result.events} events: {result.videos} videos, {result.users} users "
            f"in {result.seconds:.2f} s ({result.events_per_second:,.0f} events/s); "
            f"{'swapped in' if result.swapped else 'left in *_rebuild tables'}"
        )


if __name__ == "__main__":
    main()
