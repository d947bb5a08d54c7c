"""The RunPod Serverless worker: the model is loaded once per worker process (its cold start),
then `runpod.serverless.start` takes jobs (on RunPod), or runs `--test_input` / test_input.json
(the SDK's local test mode)."""

import logging
from typing import Any

import runpod

from openv_mochi.adapters.http_uploader import HttpUploader
from openv_mochi.adapters.mochi_pipeline import MochiRenderer, UnavailableRenderer, load_pipeline
from openv_mochi.adapters.mp4_encoder import Mp4Encoder
from openv_mochi.adapters.runpod_progress import RunpodProgress
from openv_mochi.config import MochiSettings
from openv_mochi.domain.errors import WorkerError
from openv_mochi.service_layer.ports import Renderer
from openv_mochi.service_layer.render_job import Worker, run_render_job

log = logging.getLogger("openv_mochi")


def build_worker(settings: MochiSettings) -> Worker:
    renderer: Renderer
    try:
        renderer = MochiRenderer(load_pipeline(settings), settings.max_sequence_length)
    except WorkerError as error:
        log.error("%s", error)
        renderer = UnavailableRenderer(error)
    return Worker(
        renderer=renderer,
        encoder=Mp4Encoder(),
        uploader=HttpUploader(settings.upload_retry_s, settings.upload_timeout_s),
    )


def make_handler(worker: Worker) -> Any:
    """The function RunPod calls with each job (`{"id": ..., "input": {...}}`)."""

    def handler(job: dict[str, Any]) -> dict[str, Any]:
        return run_render_job(worker, job.get("input"), RunpodProgress(job))

    return handler


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    handler = make_handler(build_worker(MochiSettings()))
    runpod.serverless.start({"handler": handler})
