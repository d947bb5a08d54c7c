"""`python -m openv_storage [serve | sweep [--no-report]]`.

`serve` (the default) consumes video events and RunPod facts: removes deleted videos' objects,
imports results left at URLs, and sweeps periodically. `sweep` runs one sweep and prints its
counts and the ids of completed videos whose file is missing (exit code 1 if some video could
not be swept); `--no-report` skips publishing purges of deleted videos (no Kafka needed).
"""

from collections.abc import Mapping

from openv_infra.cli import Task, service_main
from openv_storage.config import Settings
from openv_storage.main import create_app, sweep_once


async def _sweep(settings: Settings, flags: Mapping[str, bool]) -> int:
    report = await sweep_once(settings, report_facts=not flags["no-report"])
    print(report.summary(), flush=True)
    for video_id in report.missing_videos or []:
        print(f"missing: {video_id}", flush=True)
    return 1 if report.errors else 0


def main() -> None:
    service_main(
        "storage",
        Settings,
        create_app,
        {
            "sweep": Task(
                "sweep the bucket once and print what was found",
                _sweep,
                {"no-report": "do not publish StorageObjectsDeleted for purged deleted videos"},
            )
        },
        package="openv_storage",
    )


if __name__ == "__main__":
    main()
