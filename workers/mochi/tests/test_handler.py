"""The real handler with the tiny model, called the way RunPod calls it: through the SDK's
`run_job` (what its worker loop and its local test mode run)."""

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import runpod
import torch
from runpod.serverless.modules.rp_job import run_job

from jobs import job_input
from openv_contracts.render_job import RenderJobUploaded
from openv_mochi.config import MochiSettings
from openv_mochi.entrypoints.runpod_worker import build_worker, make_handler
from openv_mochi.service_layer.render_job import Worker
from receiver import Receiver


class Updates:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, job: dict[str, Any], value: Any) -> None:
        self.values.append((job["id"], value))


@pytest.fixture
def updates(monkeypatch: pytest.MonkeyPatch) -> Iterator[Updates]:
    """progress_update as the handler calls it (the SDK's HTTP path is covered by the
    local-mode test in the main suite, tests/integration/test_mochi_worker.py)."""
    seen = Updates()
    monkeypatch.setattr(runpod.serverless, "progress_update", seen)
    yield seen


@pytest.fixture(scope="module")
def tiny_worker(tiny_model_dir: Path) -> Worker:
    return build_worker(MochiSettings(model_dir=tiny_model_dir, upload_retry_s=1.0))


def _run(worker: Worker, job: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(run_job(make_handler(worker), job))
    return result


def test_the_tiny_model_renders_a_real_mp4_into_the_upload_target(
    tiny_worker: Worker, receiver: Receiver, updates: Updates
) -> None:
    result = _run(tiny_worker, {"id": "job-1", "input": job_input(receiver)})

    assert "error" not in result, result
    uploaded = RenderJobUploaded.model_validate(result["output"])
    video = receiver.puts["/bucket/staging/v1.mp4"]
    assert uploaded.size_bytes == len(video)
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 24
    assert (len(frames), frames[0].width, frames[0].height) == (7, 384, 384)
    percents = [value["progress"] for job_id, value in updates.values if job_id == "job-1"]
    assert len(percents) == 10 and percents == sorted(percents) and percents[-1] == 95


def test_out_of_memory_in_the_model_is_a_clear_failure(
    tiny_worker: Worker, receiver: Receiver, updates: Updates, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(type(tiny_worker.renderer._pipe), "__call__", out_of_memory)  # type: ignore[attr-defined]
    result = _run(tiny_worker, {"id": "job-2", "input": job_input(receiver, num_frames=127)})

    assert result["error"] == (
        "out_of_memory: the GPU ran out of memory for 127 frames at 384x384: "
        "try fewer frames or a smaller size"
    )
    assert result["stopPod"] is True  # the SDK's name for refresh_worker
    assert receiver.put_attempts == []


def test_bad_input_never_reaches_the_model(
    tiny_worker: Worker, receiver: Receiver, updates: Updates
) -> None:
    result = _run(tiny_worker, {"id": "job-3", "input": job_input(receiver, steps=66)})
    assert result["error"].startswith("invalid_input: steps: ")
    assert updates.values == [] and receiver.put_attempts == []


def test_a_worker_without_weights_answers_every_job_with_the_reason(
    tmp_path: Path, receiver: Receiver, updates: Updates
) -> None:
    worker = build_worker(MochiSettings(model_dir=tmp_path / "not-mounted"))
    result = _run(worker, {"id": "job-4", "input": job_input(receiver)})
    assert result["error"].startswith("model_unavailable: no Mochi-1 weights in ")
    assert "OPENV_MOCHI_MODEL_DIR" in result["error"]
    assert receiver.put_attempts == []
