"""`python -m openv_storage`: consume video events and clean the bucket."""

from openv_shared.serve import run_service
from openv_storage.config import Settings
from openv_storage.main import create_app

if __name__ == "__main__":
    run_service("storage", Settings(), create_app)
