"""Secrets that travel in URLs, kept out of logs and spans.

The RunPod webhook URL carries a per-video token (`?token=`), the worker's presigned upload
URL an S3 signature (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`), and a
browser's status stream URL a short-lived stream token (`?stream_token=`).
Anything that may print a URL (a log line, a span's `url.full` / `http.target` / `url.query`,
an error message that embeds a URL or a request body) goes through `redact` first.
"""

import re
from collections.abc import Mapping
from typing import Any

#: Query parameters whose values are secrets. Also matched percent-encoded (`%3D`), as in a
#: URL inside another URL's query, and inside JSON or repr() text (the value stops at a quote).
SECRET_PARAMS = (
    "token",
    "stream_token",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
)
REDACTED = "REDACTED"
_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])(" + "|".join(map(re.escape, SECRET_PARAMS)) + r")(=|%3D)"
    r"[^&\s\"'<>#\\]+"
)


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by `REDACTED`."""
    if "=" not in text and "%3" not in text.upper():
        return text  # the common case: nothing URL-like, no regex pass
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact_value(value: Any) -> Any:
    """A span or event attribute value with its strings redacted (sequences item by item)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple | list):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: redact_value(value) for key, value in (attributes or {}).items()}
