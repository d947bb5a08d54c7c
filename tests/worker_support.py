"""Starting the GPU worker (workers/mochi) from the main suite: it lives in its own environment,
which `python3 dev.py test` builds and names in OPENV_WORKER_PYTHON (tests marked `worker`)."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "workers" / "mochi"


def worker_python() -> str:
    python = os.environ.get("OPENV_WORKER_PYTHON")
    if not python:
        pytest.fail("OPENV_WORKER_PYTHON is not set: run these tests with `python3 dev.py test`")
    return python


def worker_env(model_dir: Path, **extra: str) -> dict[str, str]:
    """The worker's environment: its code on PYTHONPATH, the model folder, nothing cached from
    the Hugging Face hub."""
    path = os.pathsep.join(str(p) for p in (WORKER, ROOT / "shared"))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "OPENV_MOCHI_MODEL_DIR": str(model_dir),
        "OPENV_MOCHI_UPLOAD_RETRY_S": "2",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def run_once_command(model_dir: Path) -> str:
    """The simulator's RUNPOD_SIM_HANDLER_COMMAND for the worker's handler."""
    env = worker_env(model_dir)
    names = ("PYTHONPATH", "OPENV_MOCHI_MODEL_DIR", "OPENV_MOCHI_UPLOAD_RETRY_S", "HF_HUB_OFFLINE")
    settings = [f"{name}={env[name]}" for name in names]
    return shlex.join(["env", *settings, worker_python(), "-m", "openv_mochi.entrypoints.run_once"])


def save_tiny_model(folder: Path) -> Path:
    """The tiny random Mochi pipeline of the worker's tests, saved in `folder` (seconds)."""
    subprocess.run(
        [worker_python(), str(WORKER / "tests" / "tiny_mochi.py"), str(folder)],
        env=worker_env(folder),
        check=True,
        timeout=300,
    )
    return folder
