"""One render job, from the bridge's input to the answer it expects: checked input, frames
with progress per step, an MP4 at 24 fps, the upload, then `RenderJobUploaded`; or a failure
answer with a code and a one-line message (the traceback stays in the worker's log)."""

import logging
import time
from dataclasses import dataclass
from typing import Any

from openv_contracts.render_job import (
    FPS,
    RenderJobErrorCode,
    RenderJobUploaded,
    render_job_failure,
)
from openv_infra.redact import redact
from openv_mochi.domain.errors import WorkerError
from openv_mochi.domain.job_input import MAX_MESSAGE, parse_job_input
from openv_mochi.domain.progress import ProgressGate, step_percent
from openv_mochi.service_layer.ports import Encoder, ProgressSink, Renderer, Uploader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """The ports a job runs on, made once per worker process."""

    renderer: Renderer
    encoder: Encoder
    uploader: Uploader


def _failure(error: WorkerError) -> dict[str, Any]:
    answer: dict[str, Any] = render_job_failure(error.code, redact(error.message)[:MAX_MESSAGE])
    if error.code in (RenderJobErrorCode.OUT_OF_MEMORY, RenderJobErrorCode.MODEL_UNAVAILABLE):
        # runpod-python: restart this worker after the job (a fragmented GPU, a volume that
        # was not mounted yet), rather than let it fail the next job the same way.
        answer["refresh_worker"] = True
    return answer


def run_render_job(worker: Worker, raw_input: Any, progress: ProgressSink) -> dict[str, Any]:
    """The job's answer; never raises, so RunPod never shows a traceback."""
    try:
        job = parse_job_input(raw_input)
        assert job.output_put_url is not None and job.output_key is not None
        gate = ProgressGate()

        def on_step(done: int) -> None:
            percent = step_percent(done, job.steps)
            if gate.news(percent):
                progress.report(percent)

        started = time.monotonic()
        frames = worker.renderer.render(job, on_step)
        rendered = time.monotonic()
        video = worker.encoder.encode(frames, FPS)
        encoded = time.monotonic()
        worker.uploader.put(job.output_put_url, video)
        log.info(
            "rendered %dx%d, %d frames, %d steps in %.1f s; encoded %d bytes in %.1f s; "
            "uploaded in %.1f s",
            *(job.width, job.height, job.num_frames, job.steps, rendered - started),
            *(len(video), encoded - rendered, time.monotonic() - encoded),
        )
    except WorkerError as error:
        log.warning("render job failed: %s", error)
        return _failure(error)
    except Exception as exc:
        log.exception("render job failed")
        first_line = (str(exc).strip().splitlines() or [""])[0]
        message = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        return _failure(WorkerError(RenderJobErrorCode.RENDER_FAILED, message))
    return RenderJobUploaded(key=job.output_key, size_bytes=len(video)).model_dump()
