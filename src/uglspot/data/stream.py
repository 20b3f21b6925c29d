"""Frames of a live stream as they arrive: the frame-mapping rule of
:mod:`uglspot.video` applied on the fly.

A stream is anything FFmpeg (through PyAV) opens for reading that cannot be
rewound: a ``udp://``, ``tcp://``, ``rtsp://`` or ``srt://`` URL, a named
pipe, or ``-`` for standard input. :func:`stream_frames` decodes it and
yields each target frame (at the model's rate and size) as soon as it is
known, with the moment it became known; a file's reader (``VideoReader``)
gives the same frames for the same data. On request each frame also comes
at a second size (the one an entity detector decodes a file at), converted
from the same decoded picture.

Target frame ``i`` shows the last source frame at or before ``i / fps``
(rounded to half a clock tick). That frame is known once a later source
frame arrives, or at once when the source frame lies within half a tick of
the target time (no later frame can be nearer). When the stream ends, the
last frame is held until the end of its own duration, as for a file.

The stream ends cleanly at its end; a stream whose timestamps jump back (a
restarted broadcast or pusher) or whose data cannot be decoded raises a
:class:`StreamError` after the frames before it were given.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from uglspot.errors import UserError, brief
from uglspot.video import Size, _as_fraction, _rotation, output_size

URL_SCHEMES = ("udp", "tcp", "rtp", "rtsp", "rtmp", "srt", "http", "https", "pipe")
# FFmpeg reads this much of a stream before it decides its format (its default, 5 MB, is minutes of a
# low-bit-rate broadcast): enough for a transport stream's tables and the first keyframe.
PROBE_BYTES = 1 << 16
PROBE_SECONDS = 0.5
TEXT_FORMATS = {"tty"}  # FFmpeg renders any text as ANSI-art "video": not a stream to spot


class StreamError(UserError):
    """The stream broke off: it restarted, or its data cannot be decoded.
    The frames before it were given."""


@dataclass(frozen=True)
class StreamFrame:
    index: int  # target frame index, from 0
    pixels: np.ndarray  # uint8 (3, H, W)
    arrival: float  # time.monotonic() when the frame became known
    wall: float  # time.time() at the same moment
    fps: float  # the target rate: the one asked for, else the stream's own (0 when it has none)
    second: np.ndarray | None = None  # uint8 (3, h, w): the same frame at ``second_size``, when asked for


def is_stream_url(source: str) -> bool:
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() in URL_SCHEMES or source.startswith("pipe:")


def open_stream(source: str, read_timeout: float | None = None) -> av.container.InputContainer:
    """Open ``source`` (a URL, a named pipe, or ``-`` for standard input)
    for reading as it arrives; one line naming it and what to do when it
    cannot be opened."""
    name = "pipe:0" if source == "-" else source
    if not is_stream_url(name):
        path = Path(name)
        if not path.exists():
            raise UserError(f"--live {source}: no such file, named pipe or URL; pass a stream URL "
                            "(udp://, tcp://, rtsp://, srt://), a named pipe, or - for standard input")
        if path.is_dir():
            raise UserError(f"--live {source}: is a directory; pass a stream URL, a named pipe or -")
    options = {"probesize": str(PROBE_BYTES), "analyzeduration": str(int(PROBE_SECONDS * 1e6))}
    timeout = None if read_timeout is None or not is_stream_url(name) or name.startswith("pipe:") else read_timeout
    try:
        container = av.open(name, mode="r", options=options, timeout=timeout)
    except av.error.EOFError:
        raise UserError(f"--live {source}: the stream ended before any video data; start the stream "
                        "first, then spot it") from None
    except av.error.FFmpegError as exc:
        raise UserError(f"--live {source}: cannot open it as a video stream ({brief(exc.strerror or exc)}); "
                        "check the address and that something is sending video to it") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        raise UserError(f"--live {source}: has no video stream (found {', '.join(kinds) or 'no streams'}); "
                        "send a video stream")
    if container.format.name in TEXT_FORMATS:
        container.close()
        raise UserError(f"--live {source}: cannot open it as a video stream (FFmpeg reads it as text); "
                        "check the address and that something is sending video to it")
    return container


def stream_frames(source: str, fps: float | None, size: Size, read_timeout: float | None = None,
                  interpolation: str = "BILINEAR",
                  second_size: Callable[[int, int], Size] | None = None) -> Iterator[StreamFrame]:
    """Target frames of the stream ``source`` at ``fps`` (None: every source
    frame) and ``size``, in order, each as soon as it is known.
    ``second_size`` (display width, height -> a ``Size``) asks for each frame
    at that size too (``StreamFrame.second``)."""
    container = open_stream(source, read_timeout)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from _map_frames(source, container, stream, None if fps is None else _as_fraction(fps), size,
                               interpolation, second_size)
    finally:
        container.close()


def _map_frames(source: str, container, stream, fps: Fraction | None, size: Size, interpolation: str,
                second_size: Callable[[int, int], Size] | None = None) -> Iterator[StreamFrame]:
    time_base: Fraction = stream.time_base or Fraction(1, 90000)
    half = Fraction(1, 2)
    index = 0
    start_pts = last_pts = None
    previous = None  # (frame, pts) of the last source frame decoded
    shapes: list[tuple[int, int, int]] = []  # per output size: (rotation, scaled width, scaled height)
    last_duration = 0

    def convert_to(frame: av.VideoFrame, which: int) -> np.ndarray:
        if not shapes:
            rotation = _rotation(stream, frame)
            raw_w, raw_h = frame.width, frame.height
            disp_w, disp_h = (raw_h, raw_w) if rotation in (90, 270) else (raw_w, raw_h)
            for wanted in [size] + ([second_size(disp_w, disp_h)] if second_size is not None else []):
                out_w, out_h = output_size(disp_w, disp_h, wanted)
                shapes.append((rotation, *((out_h, out_w) if rotation in (90, 270) else (out_w, out_h))))
        rotation, width, height = shapes[which]
        chw = frame.to_ndarray(format="rgb24", width=width, height=height,
                               interpolation=interpolation).transpose(2, 0, 1)
        k = rotation // 90
        return np.ascontiguousarray(np.rot90(chw, k=k, axes=(1, 2)) if k else chw)

    def convert(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        return convert_to(frame, 0), convert_to(frame, 1) if second_size is not None else None

    rate = float(fps) if fps is not None else float(stream.average_rate or stream.guessed_rate or 0)

    def made(pixels: tuple[np.ndarray, np.ndarray | None]) -> StreamFrame:
        return StreamFrame(index, pixels[0], time.monotonic(), time.time(), rate, pixels[1])

    def target(i: int) -> Fraction:
        return start_pts + Fraction(i) / fps / time_base + half

    def seconds(pts: int) -> float:
        return float((pts - start_pts) * time_base)

    try:
        for frame in container.decode(stream):
            pts = frame.pts if frame.pts is not None else (last_pts if last_pts is not None else 0)
            if start_pts is None:
                start_pts = pts
            elif pts < last_pts:
                raise StreamError(
                    f"--live {source}: the stream restarted (its timestamps went back from {seconds(last_pts):.3f} s "
                    f"to {seconds(pts):.3f} s) after target frame {index - 1}; spotting ended there; "
                    "spot the new stream with a new run")
            last_pts = pts
            last_duration = getattr(frame, "duration", None) or 0
            if fps is None:  # the native rate: every source frame is a target frame
                yield made(convert(frame))
                index += 1
                continue
            pixels = None
            while pts > target(index):  # every target before this frame shows the previous one
                shown = previous if previous is not None else (frame, pts)
                yield made(convert(shown[0]))
                index += 1
            previous = (frame, pts)
            while pts + 1 > target(index) >= pts:  # no later frame (pts + 1 on) can be nearer this target
                pixels = convert(frame) if pixels is None else pixels
                yield made(pixels)
                index += 1
    except av.error.FFmpegError as exc:
        when = "the start" if last_pts is None else f"{seconds(last_pts):.3f} s"
        raise StreamError(f"--live {source}: damaged video data after {when} (target frame {index - 1}; "
                          f"{brief(exc.strerror or exc)}); spotting ended there") from None
    if previous is None or fps is None:
        return
    # the last source frame stays on screen until the end of its own duration, as in a file
    ticks = last_duration or (1 / stream.average_rate / time_base if stream.average_rate else 0)
    end = math.ceil((last_pts + ticks - start_pts) * time_base * fps)
    pixels = None
    while index < end:
        pixels = convert(previous[0]) if pixels is None else pixels
        yield made(pixels)
        index += 1
