"""RunPod job reports (webhook bodies and /status answers) and what they mean for a video.

Pure functions: parsing is defensive because webhooks are unsigned and may be malformed.
"""

import json
from dataclasses import dataclass
from typing import Any

from openv_shared.contracts.video import ErrorCode

KNOWN_STATUSES = frozenset(
    {"IN_QUEUE", "IN_PROGRESS", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
)
MAX_MESSAGE = 1000


class InvalidReport(ValueError):
    """Not a RunPod job report we can act on."""


@dataclass(frozen=True)
class Report:
    job_id: str
    status: str
    output: Any = None
    error: Any = None


def parse_report(body: object) -> Report:
    if not isinstance(body, dict):
        raise InvalidReport("body is not a JSON object")
    job_id, status = body.get("id"), body.get("status")
    if not isinstance(job_id, str) or not job_id:
        raise InvalidReport("missing job id")
    if not isinstance(status, str) or status not in KNOWN_STATUSES:
        raise InvalidReport(f"unknown status {status!r}")
    return Report(job_id=job_id, status=status, output=body.get("output"), error=body.get("error"))


@dataclass(frozen=True)
class Waiting:
    """Still queued at RunPod: nothing new to say."""


@dataclass(frozen=True)
class Running:
    progress: int | None


@dataclass(frozen=True)
class Uploaded:
    """The worker says it put the file at our key; the caller must check the object."""

    object_key: str


@dataclass(frozen=True)
class ResultUrl:
    """An OpenV-style worker uploaded elsewhere and returned a URL."""

    url: str


@dataclass(frozen=True)
class Failed:
    code: str
    message: str


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class TimedOut:
    reason: str


Outcome = Waiting | Running | Uploaded | ResultUrl | Failed | Cancelled | TimedOut


def progress_of(output: object) -> int | None:
    """Progress as workers report it: a number, {"progress": n} or {"percent": n}."""
    value: object = output
    if isinstance(output, dict):
        value = output.get("progress", output.get("percent"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if 0 < value <= 1 and isinstance(value, float):
        value *= 100  # a fraction such as Runway's 0..1
    return max(0, min(100, int(value)))


def _message(value: object) -> str:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        value = parsed
    if isinstance(value, dict):
        value = value.get("error_message") or value.get("message") or json.dumps(value)
    return str(value)[:MAX_MESSAGE]


def _output_error(output: object) -> object:
    return output.get("error") if isinstance(output, dict) else None


def interpret(report: Report, expected_key: str) -> Outcome:
    match report.status:
        case "IN_QUEUE":
            return Waiting()
        case "IN_PROGRESS" | "RUNNING":
            return Running(progress_of(report.output))
        case "CANCELLED":
            return Cancelled()
        case "TIMED_OUT":
            reason = "RunPod timed the job out (queue expiry or execution timeout)"
            if report.error:
                reason = f"{reason}: {_message(report.error)}"
            return TimedOut(reason[:MAX_MESSAGE])
        case "FAILED":
            error = report.error or _output_error(report.output) or "worker failed"
            return Failed(ErrorCode.WORKER_FAILED.value, _message(error))
    # COMPLETED: look at what the worker actually returned.
    output = report.output
    if isinstance(output, str):
        # Some workers return the bare result string rather than {"result": ...}.
        output = {"result": output}
    if isinstance(output, dict):
        if output.get("error"):
            return Failed(ErrorCode.WORKER_FAILED.value, _message(output["error"]))
        result = output.get("result")
        if isinstance(result, str) and result.strip().upper().startswith("FAILED"):
            return Failed(ErrorCode.WORKER_FAILED.value, result[:MAX_MESSAGE])
        if output.get("key") == expected_key:
            return Uploaded(expected_key)
        if isinstance(result, str) and result.startswith(("http://", "https://")):
            return ResultUrl(result)
    if report.error:
        return Failed(ErrorCode.WORKER_FAILED.value, _message(report.error))
    return Failed(ErrorCode.OUTPUT_MISSING.value, "the job completed without a usable output")


def is_final(outcome: Outcome) -> bool:
    """Whether the outcome ends the RunPod job (nothing more will come from it)."""
    return not isinstance(outcome, Waiting | Running)


def job_gone_reason(job_id: str) -> str:
    """Why a job that RunPod answers 404 for is over: RunPod deletes a job past its ttl (even
    while running) and a finished job's result 30 minutes after it finished."""
    return (
        f"RunPod no longer knows job {job_id} (404): its ttl or the result retention passed "
        "before the bridge heard how it ended"
    )
