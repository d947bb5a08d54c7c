"""A render job from input to answer, on fake ports except where a real one is cheap (the MP4
encoder, the uploader against a loopback server): the answers the bridge reads."""

import io
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import pytest

from jobs import job_input
from openv_contracts.render_job import RenderJobErrorCode, RenderJobInput, RenderJobUploaded
from openv_mochi.adapters.http_uploader import HttpUploader
from openv_mochi.adapters.mp4_encoder import Mp4Encoder
from openv_mochi.domain.errors import WorkerError
from openv_mochi.service_layer.ports import Frames
from openv_mochi.service_layer.render_job import Worker, run_render_job
from receiver import Receiver


class FixedFrames:
    """Frames without a model: a gradient of the job's size, every step reported."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.jobs: list[RenderJobInput] = []

    def render(self, job: RenderJobInput, on_step: Callable[[int], None]) -> Frames:
        self.jobs.append(job)
        for step in range(1, job.steps + 1):
            on_step(step)
        if self.error is not None:
            raise self.error
        ramp = np.linspace(0.0, 1.0, job.width, dtype=np.float32)
        frames: Frames = np.broadcast_to(
            ramp[None, None, :, None], (job.num_frames, job.height, job.width, 3)
        ).copy()
        return frames


class Progress:
    def __init__(self) -> None:
        self.reported: list[int] = []

    def report(self, percent: int) -> None:
        self.reported.append(percent)


def _worker(renderer: FixedFrames, retry_s: float = 1.0) -> Worker:
    return Worker(renderer, Mp4Encoder(), HttpUploader(retry_s=retry_s, timeout_s=5.0))


def _decode(video: bytes) -> tuple[int, int, int, float]:
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return len(frames), frames[0].width, frames[0].height, float(stream.average_rate or 0)


def test_a_job_is_rendered_uploaded_and_answered_as_the_bridge_expects(
    receiver: Receiver,
) -> None:
    progress = Progress()
    answer = run_render_job(_worker(FixedFrames()), job_input(receiver), progress)

    uploaded = RenderJobUploaded.model_validate(answer)
    assert uploaded.key == "videos/v1.mp4"
    video = receiver.puts["/bucket/staging/v1.mp4"]
    assert uploaded.size_bytes == len(video)
    assert _decode(video) == (7, 384, 384, 24.0)
    assert progress.reported == sorted(set(progress.reported))
    assert len(progress.reported) == 10 and progress.reported[-1] == 95


def test_bad_input_is_answered_with_its_code_and_renders_nothing(receiver: Receiver) -> None:
    renderer = FixedFrames()
    answer = run_render_job(_worker(renderer), job_input(receiver, width=100), Progress())
    assert answer["error"].startswith("invalid_input: width: ")
    assert answer["status"] == "ERROR"
    assert renderer.jobs == [] and receiver.put_attempts == []


def test_out_of_memory_is_answered_with_its_code_and_a_fresh_worker(receiver: Receiver) -> None:
    oom = WorkerError(RenderJobErrorCode.OUT_OF_MEMORY, "the GPU ran out of memory")
    answer = run_render_job(_worker(FixedFrames(oom)), job_input(receiver), Progress())
    assert answer == {
        "error": "out_of_memory: the GPU ran out of memory",
        "status": "ERROR",
        "refresh_worker": True,
    }
    assert receiver.put_attempts == []


def test_an_unexpected_failure_is_one_line_without_a_traceback(receiver: Receiver) -> None:
    boom = RuntimeError("shape mismatch in attention\nTraceback (most recent call last): ...")
    answer = run_render_job(_worker(FixedFrames(boom)), job_input(receiver), Progress())
    assert answer["error"] == "render_failed: RuntimeError: shape mismatch in attention"
    assert "refresh_worker" not in answer


def test_a_refused_upload_fails_at_once_without_the_signature(receiver: Receiver) -> None:
    receiver.put_codes = [403]
    answer = run_render_job(_worker(FixedFrames(), retry_s=30), job_input(receiver), Progress())
    assert answer["error"].startswith("upload_failed: storage answered HTTP 403")
    assert "AccessDenied" in answer["error"]
    assert len(receiver.put_attempts) == 1
    assert "s3cr3t" not in str(answer)


def test_an_upload_storage_does_not_answer_is_tried_again(receiver: Receiver) -> None:
    receiver.put_codes = [503, 429]
    answer = run_render_job(_worker(FixedFrames(), retry_s=30), job_input(receiver), Progress())
    assert answer["status"] == "DONE"
    assert len(receiver.put_attempts) == 3
    assert "/bucket/staging/v1.mp4" in receiver.puts


def test_an_upload_nobody_answers_fails_once_the_retry_time_is_over() -> None:
    closed = Receiver(url="http://127.0.0.1:9")  # discard port: connection refused
    answer = run_render_job(_worker(FixedFrames(), retry_s=0.6), job_input(closed), Progress())
    assert answer["error"] == "upload_failed: no answer from storage (ConnectError)"


@pytest.mark.parametrize("bad", [np.zeros((0, 16, 16, 3)), np.zeros((2, 16, 16))])
def test_the_encoder_refuses_frames_it_cannot_encode(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected frames"):
        Mp4Encoder().encode(bad, 24)
