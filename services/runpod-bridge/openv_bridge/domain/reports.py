"""RunPod job reports (webhook bodies and /status answers) and what they mean for a video.

Pure functions: parsing is defensive because webhooks are unsigned and may be malformed. Every
string from RunPod that becomes a fact is cleaned and bounded here first: a NUL or a lone
surrogate in a fact is refused by Postgres `jsonb` in the jobs service.
"""

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from openv_shared.contracts.facts import MAX_URL
from openv_shared.contracts.video import ErrorCode
from openv_shared.json_depth import nesting_exceeds
from openv_shared.redact import redact

KNOWN_STATUSES = frozenset(
    {"IN_QUEUE", "IN_PROGRESS", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
)
MAX_MESSAGE = 1000
#: JSON nesting a webhook body may have (RunPod's are a few levels deep); deeper ones are
#: refused before parsing, since parsing them recurses once per level.
MAX_DEPTH = 64
#: RunPod job ids: a UUID with a suffix such as `-u1` or `-e1`, `sync-` + UUID for /runsync.
#: Letters, digits, '-' and '_' only (never '/', '.', '%'), so an id is always one safe path
#: segment; the bound is far above any real id.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_KEPT_CONTROLS = frozenset("\n\t")


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether a webhook body nests deeper than `limit` (see openv_shared.json_depth)."""
    return nesting_exceeds(raw, limit)


def clean_text(value: str, limit: int, keep_newlines: bool = True) -> str:
    """`value` safe to store anywhere: control characters (C0, DEL, C1; newline and tab kept
    if asked) and lone surrogates replaced by U+FFFD, cut to `limit` characters, and secrets
    in URLs redacted (a worker's error may quote its upload URL or its webhook)."""
    kept = _KEPT_CONTROLS if keep_newlines else frozenset()
    return redact(
        "".join(
            "\ufffd" if (unicodedata.category(c) in ("Cc", "Cs") and c not in kept) else c
            for c in value[:limit]
        )
    )


def url_problem(url: str) -> str | None:
    """Why a worker's result URL cannot be handed on (None if it can): storage fetches it and
    the fact carries it, so it must be a plain absolute http(s) URL within the fact's bound."""
    if len(url) > MAX_URL:
        return f"the result URL is {len(url)} characters long (at most {MAX_URL})"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zs") for c in url):
        return "the result URL contains control characters or spaces"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the result URL cannot be parsed"
    if parts.scheme.lower() not in ("http", "https"):
        return "the result URL is not an http(s) URL"
    if not parts.hostname:
        return "the result URL has no host"
    return None


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
    if not math.isfinite(value):
        return None  # JSON's 1e999 is infinity: no progress to speak of
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
    return clean_text(str(value), MAX_MESSAGE)


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
            return TimedOut(clean_text(reason, MAX_MESSAGE))
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
            return Failed(ErrorCode.WORKER_FAILED.value, clean_text(result, MAX_MESSAGE))
        if output.get("key") == expected_key:
            return Uploaded(expected_key)
        if isinstance(result, str) and result.strip():
            problem = url_problem(result)
            if problem is None:
                return ResultUrl(result)
            return Failed(
                ErrorCode.INVALID_OUTPUT.value, f"the worker's output is unusable: {problem}"
            )
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
