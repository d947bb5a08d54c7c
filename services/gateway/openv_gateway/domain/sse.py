"""Server-Sent Events wire format and resumption (pure helpers for the stream endpoint)."""

from typing import Final

KEEPALIVE: Final = b": keep-alive\n\n"


def event(name: str, event_id: int, data: str) -> bytes:
    """One event; `data` must be one line (JSON without newlines is)."""
    lines = [f"event: {name}", f"id: {event_id}"]
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


def retry(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()


def last_event_id(header: str | None) -> int | None:
    """The stream version the client already has, or None (a foreign or absent id)."""
    if header is None:
        return None
    raw = header.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)
