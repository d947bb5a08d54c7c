"""Recognising an MP4 by its first bytes (storage's imports, the bridge's inline results)."""

from typing import Final

#: Bytes needed to recognise an MP4: a box size (4 bytes) and the `ftyp` box type.
MP4_HEAD_BYTES: Final = 8


def looks_like_mp4(head: bytes) -> bool:
    """An ISO base media file (MP4) starts with an `ftyp` box: a 32-bit big-endian size
    (at least 8, or 1 for a 64-bit size that follows) then the type `ftyp` at bytes 4..8."""
    if len(head) < MP4_HEAD_BYTES or head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    return size == 1 or size >= MP4_HEAD_BYTES
