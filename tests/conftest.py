"""Fixtures every kind of test may use."""

from pathlib import Path

import pytest

from tests.worker_support import save_tiny_model


@pytest.fixture(scope="session")
def tiny_mochi_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GPU worker's tiny random Mochi-1, saved once per session (tests marked `worker`)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-mochi"))
