"""`python -m openv_gateway`: serve the public REST API."""

from openv_gateway.config import Settings
from openv_gateway.main import create_app
from openv_infra.serve import run_service

if __name__ == "__main__":
    run_service("gateway", Settings(), create_app)
