"""`python -m openv_gateway [serve]`: serve the public REST API."""

from openv_gateway.config import Settings
from openv_gateway.main import create_app
from openv_infra.cli import service_main


def main() -> None:
    service_main("gateway", Settings, create_app, package="openv_gateway")


if __name__ == "__main__":
    main()
