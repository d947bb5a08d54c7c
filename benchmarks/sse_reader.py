"""Reading a Server-Sent Events response body off a raw socket: HTTP/1.1 chunked transfer
decoding and SSE event splitting, fed the bytes as they arrive (incremental, pure), so one
benchmark process can follow 10,000 streams without an HTTP client's per-stream cost; and the
percentile the benchmarks report."""

from collections.abc import Sequence
from typing import NamedTuple


class SseEvent(NamedTuple):
    name: str
    id: str | None
    data: str


class ChunkedSse:
    """Feed it a chunked response body in any slices; it returns the complete events so far.
    `finished` turns True at the last (zero-size) chunk. Comments (keep-alives) and `retry`
    fields are skipped."""

    def __init__(self) -> None:
        self._raw = bytearray()
        self._body = bytearray()
        #: Data bytes left in the current chunk; None while a size line is expected.
        self._left: int | None = None
        #: The CRLF after a chunk's data is still to be skipped.
        self._crlf = False
        self.finished = False

    def feed(self, data: bytes) -> list[SseEvent]:
        self._raw += data
        self._dechunk()
        return self._events()

    def _dechunk(self) -> None:
        raw = self._raw
        while raw and not self.finished:
            if self._crlf:
                if len(raw) < 2:
                    return
                if raw[:2] != b"\r\n":
                    raise ValueError("chunk data not followed by CRLF")
                del raw[:2]
                self._crlf = False
            elif self._left is None:
                end = raw.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(raw[:end]).split(b";")[0], 16)
                del raw[: end + 2]
                if size == 0:
                    self.finished = True
                    return
                self._left = size
            else:
                take = min(self._left, len(raw))
                self._body += raw[:take]
                del raw[:take]
                self._left -= take
                if self._left == 0:
                    self._left, self._crlf = None, True

    def _events(self) -> list[SseEvent]:
        events = []
        body = self._body
        while (end := body.find(b"\n\n")) >= 0:
            block = bytes(body[:end]).decode()
            del body[: end + 2]
            name, event_id, data = "message", None, []
            for line in block.split("\n"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "id":
                    event_id = value
                elif field == "data":
                    data.append(value)
            if data:
                events.append(SseEvent(name, event_id, "\n".join(data)))
        return events


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p` (0..1) of values sorted ascending; None for no values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
