"""`python -m openv_bridge [serve | migrate]`: serve the webhook receiver and consume video
events (the default), or bring the bridge's database schema to the latest migration."""

from collections.abc import Mapping

from openv_bridge.adapters import migrations
from openv_bridge.config import Settings
from openv_bridge.main import create_app
from openv_infra.cli import Task, service_main


async def _migrate(settings: Settings, flags: Mapping[str, bool]) -> None:
    await migrations.upgrade(settings)


def main() -> None:
    service_main(
        "runpod-bridge",
        Settings,
        create_app,
        {"migrate": Task("bring the database schema to the latest migration", _migrate)},
        package="openv_bridge",
    )


if __name__ == "__main__":
    main()
