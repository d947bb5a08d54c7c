"""`python -m openv_jobs [serve | migrate | rebuild [--swap]]`.

`rebuild` folds the whole event log into fresh projection tables (`videos_rebuild`,
`user_usage_rebuild`); with `--swap` they replace the live ones atomically.
"""

from collections.abc import Mapping

from openv_infra.cli import Task, service_main
from openv_jobs.config import Settings
from openv_jobs.main import create_app, migrate, rebuild_projections


async def _migrate(settings: Settings, flags: Mapping[str, bool]) -> None:
    await migrate(settings)


async def _rebuild(settings: Settings, flags: Mapping[str, bool]) -> None:
    result = await rebuild_projections(settings, swap=flags["swap"])
    print(
        f"rebuilt from {result.events} events: {result.videos} videos, {result.users} users "
        f"in {result.seconds:.2f} s ({result.events_per_second:,.0f} events/s); "
        f"{'swapped in' if result.swapped else 'left in *_rebuild tables'}"
    )


def main() -> None:
    service_main(
        "jobs",
        Settings,
        create_app,
        {
            "migrate": Task("bring the database schema to the latest migration", _migrate),
            "rebuild": Task(
                "fold the event log into fresh projection tables",
                _rebuild,
                {"swap": "replace the live tables with the rebuilt ones"},
            ),
        },
        package="openv_jobs",
    )


if __name__ == "__main__":
    main()
