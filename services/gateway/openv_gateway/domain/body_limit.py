"""How much body a request may carry (pure; the middleware in entrypoints/body_limit.py
applies it, and the JSON depth bound, before anything else reads the body)."""

from dataclasses import dataclass
from typing import Final

#: The one route that takes a body.
CREATE_ROUTE: Final = ("POST", "/v1/videos")


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


#: Methods whose requests normally carry no body.
_BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def declares_no_body(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """A GET (HEAD, DELETE, OPTIONS) without Content-Length and Transfer-Encoding, or with
    `Content-Length: 0`: HTTP/1.1 framing gives it no body, so there is nothing to bound."""
    if method not in _BODILESS_METHODS:
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return False
        if lowered == b"content-length":
            return value.strip() == b"0"
    return True
