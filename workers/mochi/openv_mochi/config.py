"""The worker's settings, from `OPENV_MOCHI_*` environment variables (RunPod endpoint env)."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class MochiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENV_MOCHI_")

    #: The diffusers folder of Mochi-1 (genmo/mochi-1-preview): baked into the image at this
    #: path, or on a RunPod network volume (`/runpod-volume/...`).
    model_dir: Path = Path("/models/mochi-1-preview")
    #: The weights' variant in that folder ("bf16": the 2-byte files; "" for the full ones).
    variant: str = "bf16"
    #: Model CPU offload (diffusers): only the running component sits on the GPU, so Mochi-1
    #: fits a 24-48 GB card. Off on cards large enough to hold all of it (faster).
    cpu_offload: bool = True
    #: VAE tiling: decodes the video in tiles, the peak memory of Mochi-1's VAE is otherwise
    #: the largest of the whole render.
    vae_tiling: bool = True
    #: Text tokens the T5 encoder reads (Mochi-1 was trained with 256).
    max_sequence_length: int = 256
    #: How long a PUT of the result that S3 did not answer (no connection, 5xx, 429) is tried
    #: again before the job fails: a render must outlive a short storage outage.
    upload_retry_s: float = 120.0
    #: One PUT attempt's timeout (a 127-frame 848x480 MP4 is tens of MB).
    upload_timeout_s: float = 300.0
