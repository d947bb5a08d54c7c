"""Fixtures of the worker's tests: the tiny model on disk, a loopback receiver, a job."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver import Receiver, running_receiver


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_mochi import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-mochi"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


def pytest_configure(config: pytest.Config) -> None:
    # diffusers' Mochi transformer asks for float32 autocast, which the CPU lacks: noise here.
    config.addinivalue_line("filterwarnings", "ignore:In CPU autocast:UserWarning")
