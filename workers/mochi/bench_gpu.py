"""One Mochi-1 render on a GPU through the worker's own adapters (the settings, loading and
rendering code RunPod runs), timed: model load, each denoising step, the VAE decode, the MP4
encode, and the GPU's peak memory. Not part of any test run: it needs CUDA and the weights.

    PYTHONPATH=workers/mochi:shared python workers/mochi/bench_gpu.py [--steps 40] [--frames 31]
    python /opt/openv/bench_gpu.py            # inside the worker image (a RunPod GPU pod)

The model comes from OPENV_MOCHI_MODEL_DIR, offload and tiling from OPENV_MOCHI_CPU_OFFLOAD and
OPENV_MOCHI_VAE_TILING, as in the worker. Exits 2, saying why, without CUDA or weights."""

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from pydantic import ValidationError

from openv_contracts.render_job import FPS, RenderJobInput
from openv_mochi.adapters.mochi_pipeline import MochiRenderer, load_pipeline
from openv_mochi.adapters.mp4_encoder import Mp4Encoder
from openv_mochi.config import MochiSettings
from openv_mochi.domain.errors import WorkerError

#: Exit status when this machine cannot run the benchmark (no CUDA, no weights).
UNAVAILABLE = 2
PROMPT = (
    "A red fox trots across a snowy meadow at dawn, its breath visible in the cold air; "
    "soft golden light, shallow depth of field, cinematic."
)
GIB = 1024**3


def _parse(argv: list[str]) -> tuple[RenderJobInput, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="denoising steps (API default 40)")
    parser.add_argument("--frames", type=int, default=31, help="frames: 7, 13, ..., 127")
    parser.add_argument("--width", type=int, default=848)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the MP4 here")
    args = parser.parse_args(argv)
    try:
        job = RenderJobInput(
            positive_prompt=PROMPT,
            width=args.width,
            height=args.height,
            num_frames=args.frames,
            seed=args.seed,
            steps=args.steps,
            cfg=4.5,
        )
    except ValidationError as exc:
        parser.error(f"outside the API's bounds: {exc}")
    out: Path | None = args.out
    return job, out


def _refusal(settings: MochiSettings) -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    if not torch.cuda.is_available():
        return (
            "no CUDA device: this benchmark renders Mochi-1 on a GPU (24 GB or more); "
            "run it on a GPU machine or a RunPod pod with the worker image"
        )
    if not (settings.model_dir / "model_index.json").is_file():
        return (
            f"no Mochi-1 weights in {settings.model_dir}: fill it with fetch_weights.py or "
            "set OPENV_MOCHI_MODEL_DIR"
        )
    return None


def main(argv: list[str]) -> int:
    job, out = _parse(argv)
    settings = MochiSettings()
    if reason := _refusal(settings):
        print(f"bench_gpu: {reason}", file=sys.stderr)
        return UNAVAILABLE
    device = torch.cuda.get_device_properties(0)
    print(
        f"GPU {device.name}, {device.total_memory / GIB:.1f} GiB; torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}); offload={settings.cpu_offload} "
        f"tiling={settings.vae_tiling}"
    )
    print(f"job: {job.width}x{job.height}, {job.num_frames} frames, {job.steps} steps")

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        renderer = MochiRenderer(load_pipeline(settings), settings.max_sequence_length)
    except WorkerError as error:
        print(f"bench_gpu: {error}", file=sys.stderr)
        return UNAVAILABLE
    loaded = time.perf_counter()

    step_ends: list[float] = []
    frames = renderer.render(job, lambda _done: step_ends.append(time.perf_counter()))
    torch.cuda.synchronize()
    rendered = time.perf_counter()
    video = Mp4Encoder().encode(frames, FPS)
    encoded = time.perf_counter()
    if out is not None:
        out.write_bytes(video)

    steps = [b - a for a, b in itertools.pairwise(step_ends)]
    print(f"load:         {loaded - started:8.1f} s")
    if step_ends:
        first = step_ends[0] - loaded
        print(f"first step:   {first:8.1f} s  (with text encoding and moves onto the GPU)")
    if steps:
        print(
            f"later steps:  {statistics.mean(steps):8.2f} s each (min {min(steps):.2f}, "
            f"max {max(steps):.2f}, {len(steps)} steps)"
        )
    if step_ends:
        print(f"VAE decode:   {rendered - step_ends[-1]:8.1f} s")
    print(f"MP4 encode:   {encoded - rendered:8.1f} s  ({len(video) / 1e6:.1f} MB)")
    print(f"render:       {rendered - loaded:8.1f} s")
    print(f"total:        {encoded - started:8.1f} s  (load, render and encode)")
    print(
        f"peak GPU memory: {torch.cuda.max_memory_allocated() / GIB:.1f} GiB allocated, "
        f"{torch.cuda.max_memory_reserved() / GIB:.1f} GiB reserved"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
