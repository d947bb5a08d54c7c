"""Encode a small but real H.264 MP4 with PyAV (no numpy: planes are filled from bytes)."""

import io
import struct
from dataclasses import dataclass
from typing import Any

import av

FPS = 24
_RAMP = bytes(range(256)) * 40  # long enough to slice any row of a scaled frame


@dataclass(frozen=True)
class RenderSpec:
    width: int
    height: int
    num_frames: int
    seed: int


def scaled_size(size: int, scale: float) -> int:
    """Divide by `scale`, round to a multiple of 16 (H.264 macroblocks), at least 64."""
    return max(64, round(size / scale / 16) * 16)


def _row(offset: int, length: int) -> bytes:
    start = offset % 256
    return _RAMP[start : start + length]


def _fill_plane(plane: Any, shift: int, step: int) -> None:
    # Diagonal stripes that move with `shift`, so consecutive frames differ.
    line = int(plane.line_size)
    rows = [_row(r * step + shift, line) for r in range(int(plane.height))]
    plane.update(b"".join(rows))


def render_mp4(spec: RenderSpec) -> bytes:
    """Blocking; call it through asyncio.to_thread. Returns the MP4 file's bytes."""
    if spec.num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {spec.num_frames}")
    buffer = io.BytesIO()
    container = av.open(buffer, mode="w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        tint = spec.seed % 256
        for index in range(spec.num_frames):
            frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
            _fill_plane(frame.planes[0], shift=index * 4, step=1)
            _fill_plane(frame.planes[1], shift=tint + index, step=0)
            _fill_plane(frame.planes[2], shift=255 - tint, step=1)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return buffer.getvalue()


def pad_mp4(video: bytes, min_bytes: int) -> bytes:
    """`video` with a trailing `free` box (players skip it) so it is at least `min_bytes`."""
    missing = min_bytes - len(video)
    if missing <= 0:
        return video
    size = max(8, missing)
    return video + struct.pack(">I", size) + b"free" + bytes(size - 8)
