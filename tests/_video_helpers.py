"""Tiny videos whose frames encode their own index, written with PyAV.

Each frame shows a 16-bit index as an 8x2 grid of black/white blocks, large
enough to survive H.264 compression and downscaling, so a test can read back
which source frame a decoded frame came from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

GRID_W, GRID_H = 8, 2


def index_image(index: int, width: int, height: int) -> np.ndarray:
    """HWC uint8 RGB image encoding ``index`` in a grid of blocks."""
    bits = [(index >> b) & 1 for b in range(GRID_W * GRID_H)]
    grid = np.array(bits, dtype=np.uint8).reshape(GRID_H, GRID_W) * 255
    image = np.kron(grid, np.ones((height // GRID_H, width // GRID_W), dtype=np.uint8))
    return np.repeat(image[:, :, None], 3, axis=2)


def decode_index(frame: torch.Tensor | np.ndarray) -> int:
    """Index encoded in a (3, H, W) frame: the centre of each block, thresholded."""
    array = np.asarray(frame, dtype=np.float32).mean(axis=0)
    height, width = array.shape
    value = 0
    for b in range(GRID_W * GRID_H):
        row, col = divmod(b, GRID_W)
        y = int((row + 0.5) * height / GRID_H)
        x = int((col + 0.5) * width / GRID_W)
        if array[y, x] > 127:
            value |= 1 << b
    return value


def write_index_video(path: Path, num_frames: int, fps: float = 25, width: int = 64, height: int = 48,
                      codec: str = "libx264", pts_ms: list[int] | None = None, rotation: int = 0,
                      options: dict[str, str] | None = None) -> Path:
    """Write a video of ``num_frames`` index frames. With ``pts_ms`` the frames
    get those timestamps in milliseconds (variable frame rate)."""
    container = av.open(str(path), mode="w", options=options or {})
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": "18", "preset": "ultrafast", "g": "10"}
    else:
        stream.options = {"g": "10"}
        stream.bit_rate = 2_000_000
    if pts_ms is not None:
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        stream.set_display_rotation(rotation)
    for k in range(num_frames):
        frame = av.VideoFrame.from_ndarray(index_image(k, width, height), format="rgb24")
        if pts_ms is not None:
            frame.pts = pts_ms[k]
            frame.time_base = Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    container = av.open(str(path), mode="w")
    stream = container.add_stream("aac", rate=16000)
    samples = int(16000 * seconds)
    tone = (np.sin(np.arange(samples) / 10.0) * 0.1).astype(np.float32)[None, :]
    for start in range(0, samples, 1024):
        frame = av.AudioFrame.from_ndarray(tone[:, start:start + 1024], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path
