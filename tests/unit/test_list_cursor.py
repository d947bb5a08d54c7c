"""The list cursor is opaque to clients but forged ones must be refused, not crash a read."""

import base64
import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from openv_jobs.adapters.queries import InvalidCursor, decode_cursor, encode_cursor


def _forged(created: str) -> str:
    raw = json.dumps([created, str(uuid4())]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_round_trips() -> None:
    at, video_id = datetime(2026, 12, 6, 5, 0, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor(at, video_id)) == (at, video_id)


@pytest.mark.parametrize(
    "cursor",
    [
        _forged("9999-12-31T23:59:59-14:00"),  # past datetime.max once in UTC
        _forged("0001-01-01T00:00:00+14:00"),  # before datetime.min once in UTC
        _forged("2026-12-06T05:00:00"),  # naive: cannot be compared with the column
        _forged("not a time"),
        "!!!",
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    ],
)
def test_a_forged_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
