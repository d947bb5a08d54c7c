"""Mochi-1 through diffusers' `MochiPipeline`, as diffusers documents it for a 24-48 GB GPU:
bf16 weights, model CPU offload and VAE tiling. The same loading code runs on RunPod (the real
weights) and in the CPU tests (a tiny random model saved in the same folder layout)."""

import logging
from collections.abc import Callable
from typing import Any

import torch
from diffusers import MochiPipeline

from openv_contracts.render_job import RenderJobErrorCode, RenderJobInput
from openv_mochi.config import MochiSettings
from openv_mochi.domain.errors import WorkerError
from openv_mochi.service_layer.ports import Frames

log = logging.getLogger(__name__)


def load_pipeline(settings: MochiSettings) -> Any:
    """The pipeline from `settings.model_dir`; WorkerError(model_unavailable) if it cannot be."""
    if not (settings.model_dir / "model_index.json").is_file():
        raise WorkerError(
            RenderJobErrorCode.MODEL_UNAVAILABLE,
            f"no Mochi-1 weights in {settings.model_dir} (model_index.json missing): bake them "
            "into the image or mount the network volume, and set OPENV_MOCHI_MODEL_DIR",
        )
    try:
        pipe = MochiPipeline.from_pretrained(
            settings.model_dir, variant=settings.variant or None, dtype=torch.bfloat16
        )
    except (OSError, ValueError) as exc:
        raise WorkerError(
            RenderJobErrorCode.MODEL_UNAVAILABLE,
            f"the weights in {settings.model_dir} could not be loaded: {exc}",
        ) from exc
    cuda = torch.cuda.is_available()
    if settings.cpu_offload:
        # Without an accelerator diffusers needs to be told the device (the CPU tests).
        pipe.enable_model_cpu_offload(device=None if cuda else "cpu")
    elif cuda:
        pipe.to("cuda")
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    log.info("Mochi-1 loaded from %s (cuda=%s)", settings.model_dir, cuda)
    return pipe


class MochiRenderer:
    def __init__(self, pipe: Any, max_sequence_length: int) -> None:
        self._pipe = pipe
        self._max_sequence_length = max_sequence_length

    def render(self, job: RenderJobInput, on_step: Callable[[int], None]) -> Frames:
        def step_end(_pipe: Any, step: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            on_step(step + 1)
            return tensors

        try:
            output = self._pipe(
                prompt=job.positive_prompt,
                negative_prompt=job.negative_prompt or None,
                width=job.width,
                height=job.height,
                num_frames=job.num_frames,
                num_inference_steps=job.steps,
                guidance_scale=job.cfg,
                # A CPU generator: the same seed gives the same video on any GPU type.
                generator=torch.Generator("cpu").manual_seed(job.seed),
                max_sequence_length=self._max_sequence_length,
                output_type="np",
                callback_on_step_end=step_end,
            )
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise WorkerError(
                RenderJobErrorCode.OUT_OF_MEMORY,
                f"the GPU ran out of memory for {job.num_frames} frames at "
                f"{job.width}x{job.height}: try fewer frames or a smaller size",
            ) from None
        frames: Frames = output.frames[0]
        return frames


class UnavailableRenderer:
    """Stands in when the model could not be loaded: every job gets that reason as its answer
    (a clear failure in the API) instead of a worker that crashes at start, over and over."""

    def __init__(self, error: WorkerError) -> None:
        self._error = error

    def render(self, job: RenderJobInput, on_step: Callable[[int], None]) -> Frames:
        raise self._error
