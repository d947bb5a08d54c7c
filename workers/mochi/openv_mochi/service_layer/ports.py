"""What a render job needs from the outside, as protocols; adapters/ holds the real ones and the
tests hold fakes."""

from collections.abc import Callable
from typing import Protocol

from openv_contracts.render_job import RenderJobInput


class Frames(Protocol):
    """Rendered frames (a numpy array of shape (frames, height, width, 3), values 0..1)."""

    @property
    def shape(self) -> tuple[int, ...]: ...


class Renderer(Protocol):
    def render(self, job: RenderJobInput, on_step: Callable[[int], None]) -> Frames:
        """The job's frames; `on_step(n)` after the n-th denoising step. Raises WorkerError
        (out_of_memory, model_unavailable) for failures with a code of their own."""
        ...


class Encoder(Protocol):
    def encode(self, frames: Frames, fps: int) -> bytes:
        """The frames as an MP4 file (H.264)."""
        ...


class Uploader(Protocol):
    def put(self, url: str, video: bytes) -> None:
        """Store the video at a presigned PUT URL; raises WorkerError(upload_failed)."""
        ...


class ProgressSink(Protocol):
    def report(self, percent: int) -> None:
        """Tell RunPod the job's progress (shown in /status while IN_PROGRESS)."""
        ...
