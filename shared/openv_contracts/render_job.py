"""The render job a RunPod worker gets and what it answers: the contract between the bridge
(which sends it), the RunPod simulator and our own GPU worker (which answer it).

The bounds are the public API's (`openv_contracts.video`), not a copy: a worker validating its
input with `RenderJobInput` refuses exactly what the API would. Extra keys (the bridge's
attempt marker) are ignored, so the bridge may add bookkeeping without breaking a worker.
"""

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openv_contracts.video import Cfg, NegativePrompt, NumFrames, Prompt, Seed, Side, Steps

#: Frames per second of every rendered video (Mochi-1's native rate).
FPS = 24


class RenderJobInput(BaseModel):
    """RunPod's `input` of a render job."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    positive_prompt: Prompt
    negative_prompt: NegativePrompt = ""
    width: Side
    height: Side
    num_frames: NumFrames
    seed: Seed
    steps: Steps
    cfg: Cfg
    #: Presigned PUT URL of this attempt's staging object: where the worker uploads the MP4.
    #: Absent only in jobs sent before uploads existed (the worker then answers a URL).
    output_put_url: str | None = None
    #: The video's final object key, echoed back in the output (RunPod's /status shows it).
    output_key: str | None = None


class RenderJobUploaded(BaseModel):
    """The output of a job whose worker uploaded the MP4 to `output_put_url`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(min_length=1)
    size_bytes: int = Field(ge=1)
    content_type: Literal["video/mp4"] = "video/mp4"
    status: Literal["DONE"] = "DONE"


class RenderJobErrorCode(StrEnum):
    """Why a worker could not finish a job: the `<code>` of its `{"error": "<code>: <message>"}`
    answer (runpod-python turns that key into the job's `error`, status FAILED)."""

    #: The input breaks this contract (a bound, a missing upload target): not worth retrying.
    INVALID_INPUT = "invalid_input"
    #: The worker has no usable model (weights missing or unreadable): a deployment fault.
    MODEL_UNAVAILABLE = "model_unavailable"
    #: The GPU ran out of memory for this size and length.
    OUT_OF_MEMORY = "out_of_memory"
    #: The model failed in another way.
    RENDER_FAILED = "render_failed"
    #: The PUT of the video to `output_put_url` was refused or never answered.
    UPLOAD_FAILED = "upload_failed"


def render_job_failure(code: RenderJobErrorCode, message: str) -> dict[str, str]:
    """A failed job's answer; `status` stays in the output RunPod shows once `error` is taken."""
    return {"error": f"{code.value}: {message}", "status": "ERROR"}


def render_job_progress(percent: int) -> dict[str, int]:
    """A progress update's value, as `runpod.serverless.progress_update` sends it."""
    return {"progress": percent}
