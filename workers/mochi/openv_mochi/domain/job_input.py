"""A job's `input` read against the shared contract: our worker only uploads, so the upload
target is required here although the contract keeps it optional for older workers."""

from typing import Any

from pydantic import ValidationError

from openv_contracts.render_job import RenderJobErrorCode, RenderJobInput
from openv_mochi.domain.errors import WorkerError

#: Longest error message an answer carries (the bridge shortens further).
MAX_MESSAGE = 500


def _readable(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "input"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:MAX_MESSAGE]


def parse_job_input(raw: Any) -> RenderJobInput:
    """The job's input, or WorkerError(invalid_input) naming every field that is wrong."""
    if not isinstance(raw, dict):
        raise WorkerError(RenderJobErrorCode.INVALID_INPUT, "the job input is not a JSON object")
    try:
        job = RenderJobInput.model_validate(raw)
    except ValidationError as exc:
        raise WorkerError(RenderJobErrorCode.INVALID_INPUT, _readable(exc)) from None
    missing = [name for name in ("output_put_url", "output_key") if not getattr(job, name)]
    if missing:
        names = " and ".join(missing)
        raise WorkerError(
            RenderJobErrorCode.INVALID_INPUT,
            f"{names} missing: this worker stores the video only where the job says",
        )
    return job
