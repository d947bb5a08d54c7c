"""`python -m openv_bridge [serve | migrate]`: serve the webhook receiver and consume video
events (the default), or bring the bridge's database schema to the latest migration."""

import argparse
import asyncio

from openv_bridge.adapters import migrations
from openv_bridge.config import Settings
from openv_bridge.main import create_app
from openv_infra.logging import configure_logging
from openv_infra.serve import run_service


def main() -> None:
    parser = argparse.ArgumentParser(prog="openv_bridge")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = Settings()
    if args.command == "serve":
        run_service("runpod-bridge", settings, create_app)
        return
    configure_logging("runpod-bridge", settings.log_level)
    asyncio.run(migrations.upgrade(settings))


if __name__ == "__main__":
    main()
