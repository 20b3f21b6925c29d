"""Video decoding with PyAV: metadata, frames at a target rate and size, and
random access to a range of target frames.

The frame-mapping rule
----------------------
Time is measured from the first decoded frame of the video stream. Target frame
``i`` at ``fps`` frames per second has the time ``t_i = i / fps``; it shows the
**last source frame whose timestamp is at or before** ``t_i`` (what a viewer
sees on screen at that instant: "sample and hold"). Timestamps are rounded to
the stream's clock, so a source frame counts as "at or before" when its
timestamp is at most half a clock tick after ``t_i``. This works unchanged for
variable frame rate files, because it only looks at each frame's own
timestamp. The video has ``ceil(duration * fps)`` target frames, where the
duration runs from the first frame to the end of the last one.

With ``fps=None`` (native rate) target frame ``i`` is the ``i``-th source frame
in presentation order, whatever its timestamp.

Examples: 25 → 2 fps shows source frames 0, 12, 25, 37, 50, … (``floor(12.5 i)``);
30 → 25 fps shows ``floor(1.2 i)``: 0, 1, 2, 3, 4, 6, 7, … (every sixth source
frame is skipped).

Random access seeks to the keyframe at or before the first wanted frame and
decodes forward, so a 100-frame clip of a long video costs one GOP of extra
decoding, not the whole video. Decoding is multi-threaded (FFmpeg frame and
slice threads) and scaling uses FFmpeg's own scaler on the decoded frame.
"""

from __future__ import annotations

import collections
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
import torch

from uglspot.errors import UserError
from uglspot.limits import MAX_FPS, MAX_SIDE

# File name endings taken for videos, wherever a folder is searched for them (in this order).
VIDEO_SUFFIXES = (".avi", ".flv", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".ts", ".webm")

Size = int | tuple[int, int] | None
"""Output size: ``None`` native, ``int`` a target height keeping the aspect
ratio (width rounded to an even number), or ``(width, height)``."""

_REENCODE_HINT = "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -crf 18 OUT.mp4`"


class DecodeError(UserError):
    """A video broke part-way through decoding.

    ``frames`` holds the target frames decoded before the damage (the first
    ``last_good_frame + 1`` frames of the request are valid) so a caller may
    still use them.
    """

    def __init__(self, message: str, path: str, last_good_frame: int, frames: torch.Tensor | None):
        super().__init__(message)
        self.path = path
        self.last_good_frame = last_good_frame
        self.frames = frames

    def __reduce__(self):
        return (DecodeError, (str(self), self.path, self.last_good_frame, None))


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float  # average source frame rate
    num_frames: int  # source frames (from the container, else estimated from the duration)
    duration: float  # seconds from the first frame to the end of the last one
    width: int  # display width, after rotation
    height: int  # display height, after rotation
    rotation: int  # counter-clockwise degrees applied for display: 0, 90, 180 or 270
    codec: str
    file_bytes: int
    file_mtime: float


def _open(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return its container and first video stream, or a
    one-line UserError for a missing file, a non-video or an unknown codec."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a video file")
    try:
        container = av.open(str(path), mode="r")
    except av.error.EOFError:
        raise UserError(f"{path}: the file ends before any video data (empty or zero-frame file); "
                        "pass a video with at least one frame") from None
    except av.error.FFmpegError as exc:
        raise UserError(f"{path}: not a readable video file ({exc.strerror or exc}); "
                        f"check that the file is complete, or {_REENCODE_HINT}") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        if not kinds:
            raise UserError(f"{path}: contains no streams at all (empty or zero-frame file); "
                            "pass a video with at least one frame")
        raise UserError(f"{path}: has no video stream (found only: {', '.join(kinds)}); "
                        "pass a video file, not an audio-only one")
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec is None or codec.codec is None or not codec.codec.is_decoder:
        container.close()
        raise UserError(f"{path}: video codec is not supported by this FFmpeg build; {_REENCODE_HINT}")
    stream.thread_type = "AUTO"
    return container, stream


def _rotation(stream: av.video.stream.VideoStream, first: av.VideoFrame | None) -> int:
    angle = first.rotation if first is not None else 0
    return int(round(angle / 90.0)) % 4 * 90


def _stream_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     count: int, rate: Fraction) -> Fraction | None:
    if stream.duration and stream.time_base:
        return stream.duration * stream.time_base
    if container.duration:
        return Fraction(container.duration, av.time_base)
    if count and rate:
        return count / rate
    return None




def output_size(width: int, height: int, size: Size) -> tuple[int, int]:
    """``(width, height)`` of the output for a display size and a requested size."""
    if size is None:
        return width, height
    if isinstance(size, int):
        if size <= 0:
            raise UserError(f"target height must be positive, got {size}")
        out_w, out_h = max(2, int(round(width * size / height / 2)) * 2), size
    else:
        out_w, out_h = size
        if out_w <= 0 or out_h <= 0:
            raise UserError(f"target size must be positive, got {out_w}x{out_h}")
    if out_w > MAX_SIDE or out_h > MAX_SIDE:
        raise UserError(f"target size {int(out_w)}x{int(out_h)} is larger than {MAX_SIDE} pixels on a side (the "
                        f"video is {width}x{height}); ask for a smaller height")
    return int(out_w), int(out_h)


def probe(path: str | Path) -> VideoInfo:
    """Metadata of the first video stream (decodes one frame to check it
    decodes; reads no further)."""
    reader = VideoReader(path)
    return reader.info


def _as_fraction(fps: float) -> Fraction:
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise UserError(f"target fps must be a positive number, got {fps}")
    if fps > MAX_FPS:
        raise UserError(f"target fps {fps:g} is above {MAX_FPS:g}, the highest rate uglspot decodes to; "
                        "ask for at most the video's own rate")
    return Fraction(fps).limit_denominator(1_000_000)


class VideoReader:
    """Frames of one video at a target fps and size (see the module docstring
    for the mapping rule). ``read(start, count)`` gives any range of target
    frames, zeros for frames outside the video.
    """

    def __init__(self, path: str | Path, fps: float | None = None, size: Size = None,
                 threads: int = 0, interpolation: str = "BILINEAR", convert_threads: int | None = None):
        self.path = str(path)
        self.interpolation = interpolation
        self.threads = threads
        # Scaling and colour conversion run on a few threads beside the
        # decoder (PyAV releases the GIL there); on one thread they cost more
        # than decoding itself.
        self.convert_threads = convert_threads or max(1, min(4, os.cpu_count() or 1))
        container, stream = _open(path)
        try:
            self._time_base: Fraction = stream.time_base or Fraction(1, 90000)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self._source_rate = Fraction(rate) if rate else None
            first = self._first_frame(container, stream)
            self._start_pts: int = first.pts if first.pts is not None else 0
            rotation = _rotation(stream, first)
            raw_w, raw_h = first.width, first.height
            count = stream.frames
            duration = _stream_duration(container, stream, count, self._source_rate)
            if duration is None:
                duration = Fraction(0)
            if not count and self._source_rate:
                count = int(round(duration * self._source_rate))
            codec = stream.codec_context.name
        finally:
            container.close()
        disp_w, disp_h = (raw_h, raw_w) if rotation in (90, 270) else (raw_w, raw_h)
        stat = os.stat(self.path)
        self.info = VideoInfo(
            path=self.path, fps=float(self._source_rate or 0.0), num_frames=int(count),
            duration=float(duration), width=disp_w, height=disp_h, rotation=rotation, codec=codec,
            file_bytes=stat.st_size, file_mtime=stat.st_mtime)
        self._duration = duration
        self.width, self.height = output_size(disp_w, disp_h, size)
        # the scaler works before rotation, so it is given the un-rotated size
        self._scale_wh = (self.height, self.width) if rotation in (90, 270) else (self.width, self.height)
        self.fps = None if fps is None else float(fps)
        self._fps = None if fps is None else _as_fraction(fps)
        self._pts_index: np.ndarray | None = None
        # at the native rate the packets are counted, on first use (a probe reads only the header)
        self._num_frames = None if self._fps is None else max(1, math.ceil(duration * self._fps))

    @property
    def num_frames(self) -> int:
        """Target frames: ``ceil(duration * fps)``, or at the native rate the
        number of packets (counted once, when first asked)."""
        if self._num_frames is None:
            self._num_frames = len(self.pts_index())
        return self._num_frames

    def _first_frame(self, container, stream) -> av.VideoFrame:
        try:
            for frame in container.decode(stream):
                return frame
        except av.error.FFmpegError as exc:
            raise UserError(f"{self.path}: the first video frame cannot be decoded ({exc.strerror or exc}); "
                            f"the file is damaged or its codec unsupported; {_REENCODE_HINT}") from None
        raise UserError(f"{self.path}: the video stream has no frames; pass a video with at least one frame")

    def pts_index(self) -> np.ndarray:
        """Presentation timestamps of every source frame, sorted, read from the
        container's packets without decoding (used for the native rate)."""
        if self._pts_index is None:
            container, stream = _open(self.path)
            stamps = []
            try:
                for packet in container.demux(stream):
                    if packet.size and (packet.pts is not None or packet.dts is not None):
                        stamps.append(packet.pts if packet.pts is not None else packet.dts)
            except av.error.FFmpegError:
                pass  # a damaged tail: the frames before it still count; decoding reports the damage
            finally:
                container.close()
            index = np.sort(np.asarray(stamps, dtype=np.int64))
            self._pts_index = index[index >= self._start_pts]
        return self._pts_index

    def target_pts(self, index: int) -> Fraction:
        """Timestamp (in the stream's time base) of target frame ``index``."""
        if self._fps is None:
            return Fraction(int(self.pts_index()[index]))
        return self._start_pts + Fraction(index) / self._fps / self._time_base

    def source_frame_time(self, index: int) -> float:
        """Seconds from the first frame to target frame ``index``'s time."""
        return float((self.target_pts(index) - self._start_pts) * self._time_base)

    def read(self, start: int, count: int) -> torch.Tensor:
        """Target frames ``start .. start+count-1`` as uint8 (count, 3, H, W);
        frames before 0 or past the end are zeros."""
        # numpy does the copies: torch's multi-threaded small copies stall on a busy machine
        out = np.zeros((count, 3, self.height, self.width), dtype=np.uint8)
        lo, hi = max(start, 0), min(start + count, self.num_frames)
        if lo >= hi:
            return torch.from_numpy(out)
        index = lo - 1
        try:
            for index, array in self._iter_arrays(lo, hi):
                out[index - start] = self._to_chw(array)
        except DecodeError as exc:
            exc.frames = torch.from_numpy(out[:max(exc.last_good_frame - start + 1, 0)])
            raise
        assert index == hi - 1
        return torch.from_numpy(out)

    def iter_batches(self, start: int = 0, count: int | None = None,
                     batch_size: int = 64) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(first_index, uint8 (n, 3, H, W))`` batches of target frames in
        order, decoding once from the keyframe before ``start``."""
        end = self.num_frames if count is None else min(self.num_frames, start + count)
        start = max(start, 0)
        if start >= end:
            return
        pending: list[np.ndarray] = []
        first = start
        try:
            for index, array in self._iter_arrays(start, end):
                pending.append(array)
                if len(pending) == batch_size:
                    yield first, self._to_tensor(pending)
                    first, pending = index + 1, []
        except DecodeError:
            if pending:  # the frames before the damage are still good
                yield first, self._to_tensor(pending)
            raise
        if pending:
            yield first, self._to_tensor(pending)

    def _to_chw(self, array: np.ndarray) -> np.ndarray:
        """(h, w, 3) decoded → (3, H, W) upright (a view)."""
        chw = array.transpose(2, 0, 1)
        k = self.info.rotation // 90
        return np.rot90(chw, k=k, axes=(1, 2)) if k else chw

    def _to_tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._to_chw(a) for a in arrays]))  # (n, 3, H, W), contiguous

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = self._scale_wh
        return frame.to_ndarray(format="rgb24", width=width, height=height,
                                interpolation=self.interpolation)

    def _iter_arrays(self, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
        """Apply the mapping rule: yield ``(target_index, HWC uint8)`` for every
        target frame in ``[start, end)``, in order. Conversions run ahead on a
        thread pool; on damage the frames converted before it are yielded
        before the DecodeError is raised."""
        depth = 2 * self.convert_threads + 2
        with ThreadPoolExecutor(self.convert_threads) as pool:
            pending: collections.deque[tuple[int, Future]] = collections.deque()
            try:
                for index, future in self._iter_conversions(start, end, lambda f: pool.submit(self._convert, f)):
                    pending.append((index, future))
                    if len(pending) >= depth:
                        index, future = pending.popleft()
                        yield index, future.result()
            except DecodeError:
                while pending:
                    index, future = pending.popleft()
                    yield index, future.result()
                raise
            while pending:
                index, future = pending.popleft()
                yield index, future.result()

    def _iter_conversions(self, start: int, end: int,
                          submit: Callable[[av.VideoFrame], Future]) -> Iterator[tuple[int, Future]]:
        """The mapping rule: ``(target_index, conversion)`` for every target
        frame in ``[start, end)``, in order."""
        half_tick = Fraction(1, 2)
        targets = (self.target_pts(i) + half_tick for i in range(start, end))
        seek_pts = int(self.target_pts(start))
        margin = 0
        while True:
            container, stream = _open(self.path)
            stream.codec_context.thread_count = self.threads
            try:
                if seek_pts - margin > self._start_pts:
                    container.seek(int(seek_pts - margin), stream=stream, backward=True, any_frame=False)
                frames = self._decode(container, stream, start)
                head = next(frames, None)
                late = head is not None and head[1] > seek_pts and seek_pts - margin > self._start_pts
                if late:  # the demuxer landed after the wanted frame: seek further back
                    margin = max(2 * margin, int(Fraction(2) / self._time_base))
                    continue
                yield from self._hold(head, frames, start, end, targets, submit)
            finally:
                container.close()
            if self._fps is None and end == self.num_frames and self.num_frames < self.info.num_frames:
                raise DecodeError(
                    f"{self.path}: video data ends after {self.num_frames} of the {self.info.num_frames} "
                    f"frames its header announces (truncated file?); last good target frame "
                    f"{self.num_frames - 1}; frames before it are usable",
                    self.path, self.num_frames - 1, None)
            return

    def _decode(self, container, stream, start: int) -> Iterator[tuple[av.VideoFrame, int]]:
        """Decoded frames with their timestamps; damage raises DecodeError."""
        last_pts = None
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else (last_pts or self._start_pts)
                last_pts = pts
                yield frame, pts
        except av.error.FFmpegError as exc:
            when = "the start" if last_pts is None else \
                f"{float((last_pts - self._start_pts) * self._time_base):.3f} s"
            raise DecodeError(f"{self.path}: damaged video data after {when} ({exc.strerror or exc})",
                              self.path, -1, None) from None

    def _hold(self, head, frames, start: int, end: int, targets,
              submit: Callable[[av.VideoFrame], Future]) -> Iterator[tuple[int, Future]]:
        index = start
        target = next(targets)
        previous: av.VideoFrame | None = None
        previous_pts = None
        converted: tuple[int, Future] | None = None  # (pts, conversion) of the last frame shown

        def emit(frame, pts):
            nonlocal converted
            if converted is None or converted[0] != pts:
                converted = (pts, submit(frame))
            return converted[1]

        stream_frames = frames if head is None else _chain(head, frames)
        try:
            for frame, pts in stream_frames:
                while pts > target:
                    # every target before this frame shows the previous frame
                    # (or this one, when the target lies before the first frame)
                    shown, shown_pts = (previous, previous_pts) if previous is not None else (frame, pts)
                    yield index, emit(shown, shown_pts)
                    index += 1
                    if index == end:
                        return
                    target = next(targets)
                previous, previous_pts = frame, pts
        except DecodeError as exc:
            exc.last_good_frame = index - 1
            raise DecodeError(f"{exc}; last good target frame {index - 1}; frames before it are usable",
                              self.path, index - 1, None) from None
        if previous is None:
            raise DecodeError(f"{self.path}: no frame could be decoded at or after target frame {start}",
                              self.path, start - 1, None)
        # Past the last decoded frame it stays on screen until the stream ends,
        # unless the data stopped well before the end the header announces.
        frame_ticks = (1 / self._source_rate / self._time_base) if self._source_rate else Fraction(0)
        header_end = self._start_pts + self._duration / self._time_base
        truncated = self._fps is not None and previous_pts + 2 * frame_ticks < header_end
        while index < end:
            if truncated and target > previous_pts + frame_ticks:
                seconds = float((previous_pts - self._start_pts) * self._time_base)
                raise DecodeError(
                    f"{self.path}: video data ends at {seconds:.3f} s, before the "
                    f"{float(self._duration):.3f} s its header announces (truncated file?); "
                    f"last good target frame {index - 1}; frames before it are usable",
                    self.path, index - 1, None)
            yield index, emit(previous, previous_pts)
            index += 1
            if index < end:
                target = next(targets)


def _chain(head, rest):
    yield head
    yield from rest


def read_frames(path: str | Path, fps: float | None = None, size: Size = None) -> torch.Tensor:
    """Every target frame of a video as uint8 (T, 3, H, W)."""
    reader = VideoReader(path, fps=fps, size=size)
    return reader.read(0, reader.num_frames)
