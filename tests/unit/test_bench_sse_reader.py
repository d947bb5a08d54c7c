"""The reads benchmark's SSE reader (benchmarks/sse_reader.py): chunked decoding and event
splitting however the bytes are sliced, and its percentile."""

from benchmarks.sse_reader import ChunkedSse, SseEvent, percentile


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


BODY = chunked(
    b"retry: 2000\n\n",
    b'event: status\nid: 1\ndata: {"status": "queued"}\n\n',
    b": keep-alive\n\n",
    # One event split over two chunks, and two events in one chunk.
    b"event: status\nid: 2\nda",
    b'ta: {"status": "submitted"}\n\nevent: status\nid: 3\ndata: {"status": "cancelled"}\n\n',
)
EXPECTED = [
    SseEvent("status", "1", '{"status": "queued"}'),
    SseEvent("status", "2", '{"status": "submitted"}'),
    SseEvent("status", "3", '{"status": "cancelled"}'),
]


def test_events_whole_and_byte_by_byte() -> None:
    whole = ChunkedSse()
    assert whole.feed(BODY) == EXPECTED
    assert whole.finished
    single = ChunkedSse()
    events = [event for i in range(len(BODY)) for event in single.feed(BODY[i : i + 1])]
    assert events == EXPECTED
    assert single.finished


def test_not_finished_before_the_last_chunk() -> None:
    reader = ChunkedSse()
    assert reader.feed(BODY[:-5]) == EXPECTED
    assert not reader.finished


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([], 0.5) is None
