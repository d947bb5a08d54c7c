"""How much body a request may carry, and how deep its JSON may nest (pure; the middleware in
entrypoints/body_limit.py applies it before anything else reads the body)."""

import operator
import re
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import Final

#: The one route that takes a body.
CREATE_ROUTE: Final = ("POST", "/v1/videos")

# A JSON string with its escapes, or what is left of an unterminated one (possessive: linear
# time on any input, e.g. a body of `"\\"\\"...`).
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
# An opening bracket is a step of +1, a closing one of -1 (after subtracting 1 below).
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


@dataclass(frozen=True)
class BodyLimits:
    create_bytes: int
    other_bytes: int

    def for_request(self, method: str, path: str) -> int:
        """The most body bytes `method path` may carry."""
        return self.create_bytes if (method, path) == CREATE_ROUTE else self.other_bytes


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared Content-Length, or None when absent or not a number (the HTTP server
    refuses malformed ones itself; the streamed count still applies)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            raw = value.strip()
            return int(raw) if raw.isdigit() else None
    return None


def nesting_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether JSON `body` opens more than `max_depth` arrays/objects inside each other.

    A lexical scan, so it also answers for bodies that are not valid JSON (the parser then
    refuses them); it never recurses, unlike a parser on `[[[[...`, and runs in C loops."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    depths = accumulate(map(operator.sub, brackets, repeat(1)))
    return max(depths, default=0) > max_depth
