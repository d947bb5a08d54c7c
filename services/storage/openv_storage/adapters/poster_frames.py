"""Extract a poster frame from a video file with PyAV (FFmpeg): blocking, run it in a thread.

The poster is the first frame at or after `at_s` seconds (the last decoded frame when the video
is shorter), encoded as a baseline JPEG by FFmpeg's `mjpeg` encoder: every browser shows it,
and no image library beyond PyAV is needed. Decoding stops there, and after `max_frames` frames
in any case, so memory and time stay bounded whatever the file's length.
"""

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import av.error

from openv_storage.service_layer.posters import Still

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "image/jpeg"
#: Where the poster is taken from (seconds into the video), when the video is that long.
POSTER_AT_S: Final = 1.0
#: Most frames decoded in search of it (5 s at 24 fps).
MAX_FRAMES: Final = 120


def extract_poster(
    path: Path, at_s: float = POSTER_AT_S, max_frames: int = MAX_FRAMES
) -> Still | None:
    """The poster of the video at `path`, or None when PyAV cannot decode a frame of it
    (not a video, no video stream, a damaged file): logged, never raised."""
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                log.warning("no poster: %s holds no video stream", path.name)
                return None
            stream = container.streams.video[0]
            stream.thread_type = "NONE"  # one frame is all we need: no decoder thread pool
            frame = _frame_at(container, stream, at_s, max_frames)
            if frame is None:
                log.warning("no poster: no frame could be decoded from %s", path.name)
                return None
            return Still(_jpeg(frame), int(frame.width), int(frame.height), CONTENT_TYPE)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        log.warning("no poster: %s cannot be decoded (%s)", path.name, exc)
        return None


def _frame_at(container: Any, stream: Any, at_s: float, max_frames: int) -> Any:
    chosen = None
    for index, frame in enumerate(container.decode(stream)):
        chosen = frame
        if index + 1 >= max_frames or (frame.time is not None and frame.time >= at_s):
            break
    return chosen


def _jpeg(frame: Any) -> bytes:
    encoder: Any = av.CodecContext.create("mjpeg", "w")
    encoder.width = frame.width
    encoder.height = frame.height
    encoder.pix_fmt = "yuvj420p"  # full-range 4:2:0, the JPEG norm
    encoder.time_base = Fraction(1, 24)
    image = frame.reformat(format="yuvj420p")
    packets = encoder.encode(image) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)
