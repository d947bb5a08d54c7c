"""Text from RunPod made safe to become a fact, and what a job's error says.

Every string from RunPod that becomes a fact is cleaned and bounded here first: a NUL or a lone
surrogate in a fact is refused by Postgres `jsonb` in the jobs service. Of a raised error
(`error` as JSON with `error_type`, `error_message`, `error_traceback`) only the message is
kept, never the traceback; an execution timeout reported as an error is told apart by its
wording. Pure.
"""

import json
import re
import unicodedata

from openv_infra.redact import redact

MAX_MESSAGE = 1000
_KEPT_CONTROLS = frozenset("\n\t")


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


def error_message(value: object) -> str:
    """The human message of an error: a raised error's `error_message`, never its traceback."""
    value = _as_json(value)
    if isinstance(value, dict):
        text = next((v for k in _MESSAGE_KEYS if isinstance(v := value.get(k), str) and v), None)
        if text is None:
            nested = next((v for k in _MESSAGE_KEYS if isinstance(v := value.get(k), dict)), None)
            if nested is not None:
                return error_message(nested)
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
