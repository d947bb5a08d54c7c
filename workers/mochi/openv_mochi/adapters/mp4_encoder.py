"""Frames to an H.264 MP4 in memory, with PyAV (libx264, yuv420p: what browsers play)."""

import io

import av
import numpy as np

from openv_mochi.service_layer.ports import Frames


class Mp4Encoder:
    def encode(self, frames: Frames, fps: int) -> bytes:
        pixels = (np.clip(np.asarray(frames), 0.0, 1.0) * 255).round().astype(np.uint8)
        if pixels.ndim != 4 or pixels.shape[-1] != 3 or len(pixels) == 0:
            raise ValueError(f"expected frames of shape (n, height, width, 3), got {pixels.shape}")
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = int(pixels.shape[1]), int(pixels.shape[2])
            stream.pix_fmt = "yuv420p"
            for pixel_frame in pixels:
                frame = av.VideoFrame.from_ndarray(pixel_frame, format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())  # flush the encoder's delayed frames
        return buffer.getvalue()
