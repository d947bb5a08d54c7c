"""`python -m openv_storage [serve | sweep [--no-report]]`.

`serve` (the default) consumes video events and RunPod facts: removes deleted videos' objects,
imports results left at URLs, and sweeps periodically. `sweep` runs one sweep and prints its
counts and the ids of completed videos whose file is missing (exit code 1 if some video could
not be swept); `--no-report` skips publishing purges of deleted videos (no Kafka needed).
"""

import argparse
import asyncio
import sys

from openv_infra.logging import configure_logging
from openv_infra.serve import run_service
from openv_storage.config import Settings
from openv_storage.main import create_app, sweep_once


def main() -> None:
    parser = argparse.ArgumentParser(prog="openv_storage")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "sweep"])
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="sweep: do not publish StorageObjectsDeleted for purged deleted videos",
    )
    args = parser.parse_args()
    settings = Settings()
    if args.command == "serve":
        run_service("storage", settings, create_app)
        return
    configure_logging("storage", settings.log_level)
    report = asyncio.run(sweep_once(settings, report_facts=not args.no_report))
    print(report.summary(), flush=True)
    for video_id in report.missing_videos or []:
        print(f"missing: {video_id}", flush=True)
    if report.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
