"""The services without a database do not load SQLAlchemy (about 19 MB of RSS each, against
the local stack's goal of at most 120 MB idle per service; docs/performance.md, the soak)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["openv_gateway.main", "openv_storage.main"])
def test_a_service_without_a_database_does_not_import_sqlalchemy(module: str) -> None:
    probe = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
