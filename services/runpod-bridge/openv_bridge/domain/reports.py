"""RunPod job reports (webhook bodies and /status answers) and what they mean for a video
(`domain.outcomes`). Pure functions: parsing is defensive because webhooks are unsigned and may
be malformed. A COMPLETED job's output is read by `domain.worker_outputs`; every string that
becomes a fact is cleaned by `domain.runpod_texts`.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from openv_bridge.domain.outcomes import Cancelled, Failed, Outcome, Running, TimedOut, Waiting
from openv_bridge.domain.runpod_texts import (
    MAX_MESSAGE,
    clean_text,
    error_message,
    is_execution_timeout,
)
from openv_bridge.domain.worker_outputs import completed
from openv_contracts.video import ErrorCode
from openv_infra.json_depth import nesting_exceeds

KNOWN_STATUSES = frozenset(
    {"IN_QUEUE", "IN_PROGRESS", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
)
#: JSON nesting a webhook body may have (RunPod's are a few levels deep); deeper ones are
#: refused before parsing, since parsing them recurses once per level.
MAX_DEPTH = 64
#: RunPod job ids: a UUID with a suffix such as `-u1` or `-e1`, `sync-` + UUID for /runsync.
#: Letters, digits, '-' and '_' only (never '/', '.', '%'), so an id is always one safe path
#: segment; the bound is far above any real id.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether a webhook body nests deeper than `limit` (see openv_infra.json_depth)."""
    return nesting_exceeds(raw, limit)


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
    if not is_job_id(job_id):
        raise InvalidReport("the job id is not a RunPod job id")
    if not isinstance(status, str) or status not in KNOWN_STATUSES:
        raise InvalidReport(f"unknown status {str(status)[:100]!r}")
    return Report(job_id=job_id, status=status, output=body.get("output"), error=body.get("error"))


def progress_of(output: object) -> int | None:
    """Progress as workers report it: a number, {"progress": n} or {"percent": n}."""
    value: object = output
    if isinstance(output, dict):
        value = output.get("progress", output.get("percent"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return None  # JSON's 1e999 is infinity: no progress to speak of
    if 0 < value <= 1 and isinstance(value, float):
        value *= 100  # a fraction such as Runway's 0..1
    return max(0, min(100, int(value)))


def _output_error(output: object) -> object:
    return output.get("error") if isinstance(output, dict) else None


def _timed_out(prefix: str, error: object, code: str) -> TimedOut:
    reason = prefix if not error else f"{prefix}: {error_message(error)}"
    return TimedOut(clean_text(reason, MAX_MESSAGE), code)


def interpret(report: Report, expected_key: str) -> Outcome:
    match report.status:
        case "IN_QUEUE":
            return Waiting()
        case "IN_PROGRESS" | "RUNNING":
            return Running(progress_of(report.output))
        case "CANCELLED":
            return Cancelled()
        case "TIMED_OUT":
            if is_execution_timeout(report.error):
                return _timed_out(
                    "the job ran past its execution timeout",
                    report.error,
                    ErrorCode.EXECUTION_TIMEOUT.value,
                )
            return _timed_out(
                "RunPod timed the job out (queue expiry or execution timeout)",
                report.error,
                ErrorCode.TIMED_OUT.value,
            )
        case "FAILED":
            error = report.error or _output_error(report.output) or "worker failed"
            if is_execution_timeout(error):
                # RunPod's docs: past executionTimeout "the job fails and the worker stops".
                return _timed_out(
                    "the job ran past its execution timeout",
                    error,
                    ErrorCode.EXECUTION_TIMEOUT.value,
                )
            return Failed(ErrorCode.WORKER_FAILED.value, error_message(error))
    return completed(report.output, report.error, expected_key)


def job_gone_reason(job_id: str) -> str:
    """Why a job that RunPod answers 404 for is over: RunPod deletes a job past its ttl (even
    while running) and a finished job's result 30 minutes after it finished."""
    return (
        f"RunPod no longer knows job {job_id} (404): its ttl or the result retention passed "
        "before the bridge heard how it ended"
    )
