"""RunPod job reports (webhook bodies and /status answers) and what they mean for a video.

Pure functions: parsing is defensive because webhooks are unsigned and may be malformed. Every
string from RunPod that becomes a fact is cleaned and bounded here first: a NUL or a lone
surrogate in a fact is refused by Postgres `jsonb` in the jobs service.

Output shapes understood (see ../shared/runpod.md, "Worker output"):
- our upload convention `{"key": <the video's key>, ...}`;
- the OpenV worker's `{"result": url, "status": "SUCCESS" | "DONE"}`, its `{"status": "ERROR",
  "error": ...}` and the first version's `{"result": "FAILED: ..."}`;
- ComfyUI workers' `{"videos" | "images": [{"type": "s3_url" | "base64", "data": ...}]}`;
- a raised error (`error` as JSON with `error_type`, `error_message`, `error_traceback`): only
  the message is kept, never the traceback;
- an execution timeout reported as FAILED (or TIMED_OUT) is told apart by its wording.
"""

import base64
import binascii
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from openv_contracts.facts import MAX_URL
from openv_contracts.video import ErrorCode
from openv_infra.json_depth import nesting_exceeds
from openv_infra.mp4 import looks_like_mp4
from openv_infra.redact import redact

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
    """Whether a webhook body nests deeper than `limit` (see openv_infra.json_depth)."""
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


def _url_outcome(url: str, expected_key: str) -> "Outcome":
    """A result URL: imported by storage, unless it points into this video's own prefix (a
    worker that hands back the presigned upload URL it was given): then the upload decides,
    and the URL, which carries our signature, never becomes a fact."""
    problem = url_problem(url)
    if problem is not None:
        return Failed(ErrorCode.INVALID_OUTPUT.value, f"the worker's output is unusable: {problem}")
    prefix = expected_key.rsplit("/", 1)[0] + "/"
    if prefix != "/" and prefix in unquote(urlsplit(url).path):
        return Uploaded(expected_key)
    return ResultUrl(url)


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
class InlineVideo:
    """A ComfyUI-style worker returned the file itself, base64-encoded; the caller decodes it
    (`decode_video`) and stores it at the video's key."""

    data: str


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
    code: str = ErrorCode.TIMED_OUT.value


Outcome = Waiting | Running | Uploaded | ResultUrl | InlineVideo | Failed | Cancelled | TimedOut


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


#: Keys of a raised error's JSON (and of error objects) that hold the human message, in order.
_MESSAGE_KEYS = ("error_message", "message", "error", "detail")
#: Wording of an execution timeout. RunPod documents none for one that arrives as FAILED, so
#: this matches the ways it can be said ("executionTimeout", "execution timeout exceeded",
#: "job timed out", "exceeded ... timeout"), not a worker's own network timeout ("Read timed
#: out"), which stays a worker failure.
_EXECUTION_TIMEOUT = re.compile(
    r"execution[\s_-]*time|job (?:has )?(?:timed[\s_-]*out|timeout)"
    r"|exceed\w*\b.{0,60}\b(?:timeout|time ?limit)|time ?out (?:was )?exceeded",
    re.IGNORECASE | re.DOTALL,
)


def _as_json(value: object) -> object:
    """A string holding a JSON object (runpod-python's raised-error form) as that object."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _message(value: object) -> str:
    """The human message of an error: a raised error's `error_message`, never its traceback."""
    value = _as_json(value)
    if isinstance(value, dict):
        text = next((v for k in _MESSAGE_KEYS if isinstance(v := value.get(k), str) and v), None)
        if text is None:
            nested = next((v for k in _MESSAGE_KEYS if isinstance(v := value.get(k), dict)), None)
            if nested is not None:
                return _message(nested)
            kind = value.get("error_type")
            text = f"the worker raised {kind}" if isinstance(kind, str) and kind else None
        if text is None:
            kept = {k: v for k, v in value.items() if "traceback" not in str(k).lower()}
            text = json.dumps(kept, default=str)[: MAX_MESSAGE * 2]
        value = text
    return clean_text(str(value), MAX_MESSAGE)


def is_execution_timeout(error: object) -> bool:
    """Whether a job's error says it ran past its execution timeout (type or message)."""
    value = _as_json(error)
    texts: list[str] = []
    if isinstance(value, dict):
        texts = [str(value.get(k) or "") for k in ("error_type", *_MESSAGE_KEYS)]
    elif isinstance(value, str):
        texts = [value]
    return any(_EXECUTION_TIMEOUT.search(text[:MAX_MESSAGE]) for text in texts)


def _output_error(output: object) -> object:
    return output.get("error") if isinstance(output, dict) else None


#: ComfyUI workers' result lists, looked at in this order.
_MEDIA_LISTS = ("videos", "images")
#: Entries of a list looked at (a worker returning thousands is not trusted further).
_MAX_MEDIA_ENTRIES = 100
_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _suffix_of(entry: dict[str, Any]) -> str:
    name = entry.get("filename")
    return name.strip().lower() if isinstance(name, str) else ""


def _media_outcome(output: dict[str, Any], expected_key: str) -> Outcome | None:
    """The outcome of a ComfyUI-style result list, or None if the output has no entries.

    The first entry that looks like a video wins (by its `filename`): a workflow may also
    return preview images. An entry without a filename is taken as the video."""
    entries = [
        entry
        for name in _MEDIA_LISTS
        if isinstance(listed := output.get(name), list)
        for entry in listed[:_MAX_MEDIA_ENTRIES]
        if isinstance(entry, dict)
    ]
    if not entries:
        return None
    videos = [e for e in entries if not _suffix_of(e).endswith(_IMAGE_SUFFIXES)]
    named = [e for e in videos if _suffix_of(e).endswith(_VIDEO_SUFFIXES)]
    if not videos:
        return Failed(ErrorCode.INVALID_OUTPUT.value, "the worker returned images but no video")
    chosen = (named or videos)[0]
    kind, data = chosen.get("type"), chosen.get("data")
    if not isinstance(data, str) or not data.strip():
        return Failed(ErrorCode.INVALID_OUTPUT.value, "the worker's video entry has no data")
    if kind == "s3_url":
        return _url_outcome(data, expected_key)
    if kind == "base64":
        return InlineVideo(data)
    shown = clean_text(str(kind), 40, keep_newlines=False)
    return Failed(ErrorCode.INVALID_OUTPUT.value, f"the worker's video entry has type {shown!r}")


class InvalidVideo(ValueError):
    """An inline (base64) result that cannot be stored as the video."""


#: A data URI's header (`data:video/mp4;base64,`), which some workers put before the data.
_DATA_URI = re.compile(r"data:[\w.+/-]*(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)


def decode_video(data: str, max_bytes: int) -> bytes:
    """The MP4 an inline result holds: base64 (padding and line breaks allowed, a data URI
    header skipped), at most `max_bytes` once decoded, starting with an MP4's `ftyp` box.
    The size is checked before decoding, so an oversized result costs no decoding."""
    head = _DATA_URI.match(data[:200])
    if head is not None:
        data = data[head.end() :]
    if len(data) > (max_bytes + 2) // 3 * 4 + len(data) // 76 * 2 + 4:  # room for line breaks
        raise InvalidVideo(f"the worker's inline video is larger than {max_bytes} bytes")
    compact = "".join(data.split())
    try:
        video = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidVideo("the worker's inline video is not valid base64") from None
    if len(video) > max_bytes:
        raise InvalidVideo(f"the worker's inline video is larger than {max_bytes} bytes")
    if not looks_like_mp4(video[:16]):
        raise InvalidVideo("the worker's inline video is not an MP4 file (no ftyp box)")
    return video


def _timed_out(prefix: str, error: object, code: str) -> TimedOut:
    reason = prefix if not error else f"{prefix}: {_message(error)}"
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
            return Failed(ErrorCode.WORKER_FAILED.value, _message(error))
    return _completed(report, expected_key)


def _completed(report: Report, expected_key: str) -> Outcome:
    """What a COMPLETED job's output means."""
    output = report.output
    if isinstance(output, str):
        # Some workers return the bare result string rather than {"result": ...}.
        output = {"result": output}
    if isinstance(output, dict):
        if output.get("error"):
            return Failed(ErrorCode.WORKER_FAILED.value, _message(output["error"]))
        result, status = output.get("result"), output.get("status")
        if isinstance(result, str) and result.strip().upper().startswith("FAILED"):
            return Failed(ErrorCode.WORKER_FAILED.value, clean_text(result, MAX_MESSAGE))
        if isinstance(status, str) and status.strip().upper() in ("ERROR", "FAILED"):
            # The OpenV worker's failure whose `error` RunPod did not pass on.
            detail = output.get("message")
            said = f": {_message(detail)}" if isinstance(detail, str) and detail else ""
            reported = clean_text(status.strip(), 20, keep_newlines=False)
            return Failed(ErrorCode.WORKER_FAILED.value, f"the worker reported {reported}{said}")
        if output.get("key") == expected_key:
            return Uploaded(expected_key)
        if isinstance(result, str) and result.strip():
            return _url_outcome(result, expected_key)
        media = _media_outcome(output, expected_key)
        if media is not None:
            return media
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
