"""The render job a RunPod worker gets and what it answers: the contract between the bridge
(which sends it), the RunPod simulator and our own GPU worker (which answer it).

The bounds are the public API's (`openv_contracts.video`), not a copy: a worker validating its
input with `RenderJobInput` refuses exactly what the API would. Extra keys (the bridge's
attempt marker) are ignored, so the bridge may add bookkeeping without breaking a worker.
"""

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
