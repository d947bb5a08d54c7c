"""`python -m openv_bridge`: serve the webhook receiver and consume video events."""

from openv_shared.serve import run_service

from openv_bridge.config import Settings
from openv_bridge.main import create_app

if __name__ == "__main__":
    run_service("runpod-bridge", Settings(), create_app)
