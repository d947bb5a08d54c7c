"""What a COMPLETED job's output means: the worker output shapes the bridge understands. Pure;
defensive, since webhooks are unsigned and may be malformed.

Output shapes understood (see ../shared/runpod.md, "Worker output"):
- our upload convention `{"key": <the video's key>, ...}`;
- the OpenV worker's `{"result": url, "status": "SUCCESS" | "DONE"}`, its `{"status": "ERROR",
  "error": ...}` and the first version's `{"result": "FAILED: ..."}`;
- ComfyUI workers' `{"videos" | "images": [{"type": "s3_url" | "base64", "data": ...}]}`, an
  inline (base64) video decoded and checked by `decode_video`;
- a raised error: its message only (`runpod_texts.error_message`).
"""

import base64
import binascii
import re
import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

from openv_bridge.domain.outcomes import Failed, InlineVideo, Outcome, ResultUrl, Uploaded
from openv_bridge.domain.runpod_texts import MAX_MESSAGE, clean_text, error_message
from openv_contracts.facts import MAX_URL
from openv_contracts.video import ErrorCode
from openv_infra.mp4 import looks_like_mp4


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


def _url_outcome(url: str, expected_key: str) -> Outcome:
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


def completed(output: object, error: object, expected_key: str) -> Outcome:
    """What a COMPLETED job's output (and its `error`, if any) means."""
    if isinstance(output, str):
        # Some workers return the bare result string rather than {"result": ...}.
        output = {"result": output}
    if isinstance(output, dict):
        if output.get("error"):
            return Failed(ErrorCode.WORKER_FAILED.value, error_message(output["error"]))
        result, status = output.get("result"), output.get("status")
        if isinstance(result, str) and result.strip().upper().startswith("FAILED"):
            return Failed(ErrorCode.WORKER_FAILED.value, clean_text(result, MAX_MESSAGE))
        if isinstance(status, str) and status.strip().upper() in ("ERROR", "FAILED"):
            # The OpenV worker's failure whose `error` RunPod did not pass on.
            detail = output.get("message")
            said = f": {error_message(detail)}" if isinstance(detail, str) and detail else ""
            reported = clean_text(status.strip(), 20, keep_newlines=False)
            return Failed(ErrorCode.WORKER_FAILED.value, f"the worker reported {reported}{said}")
        if output.get("key") == expected_key:
            return Uploaded(expected_key)
        if isinstance(result, str) and result.strip():
            return _url_outcome(result, expected_key)
        media = _media_outcome(output, expected_key)
        if media is not None:
            return media
    if error:
        return Failed(ErrorCode.WORKER_FAILED.value, error_message(error))
    return Failed(ErrorCode.OUTPUT_MISSING.value, "the job completed without a usable output")
