"""Highlights: one clip per spotted event (events close together share one),
cut from the source video, and optionally one reel of them all.

A clip runs from ``before`` seconds ahead of its first event to ``after``
seconds past its last. Where the video has a keyframe at the clip's start
and at its end (or the end is the video's), the clip is the source's own
packets, copied (no quality lost, no decoding); elsewhere its frames are
decoded and encoded again (H.264). ``mode="copy"`` widens each clip to the
keyframes around it so that every clip is copied; ``mode="encode"`` encodes
every clip. The reel is always encoded. Clips carry the video stream only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

from uglspot.data.events import SpottedEvent, VideoEvents, read_events_file
from uglspot.errors import UserError, listed

MODES = ("auto", "copy", "encode")


@dataclass(frozen=True)
class Clip:
    """One clip: seconds from the video's first frame, the events inside it,
    its file and how it was made ("copy" or "encode")."""

    start: float
    end: float
    events: tuple[SpottedEvent, ...]
    file: Path
    mode: str

    def to_json(self) -> dict:
        return {"file": self.file.name, "start": round(self.start, 3), "end": round(self.end, 3), "mode": self.mode,
                "events": [{"frame": e.frame, "label": e.label, "score": round(e.score, 6)} for e in self.events]}


@dataclass
class ClipsOutcome:
    clips: list[Clip]
    index_file: Path  # clips.json: the source, and each clip with its events
    reel: Path | None = None
    events_file: Path | None = None  # the events.json the events came from
    left_out: int = 0  # events of other classes or below min_score
    notes: list[str] = field(default_factory=list)


def find_events_file(source: str | Path, video: str | Path) -> Path:
    """The ``events.json`` for ``video``: ``source`` itself, or the one in
    the output folder of ``spot``/``predict`` whose video id (``index.json``)
    or folder name is the video file's stem."""
    from uglspot.io import read_json, safe_name

    source, video = Path(source), Path(video)
    if source.is_file():
        return source
    if not source.is_dir():
        raise UserError(f"{source}: not found; pass an events.json file or the output folder of `uglspot spot`")
    index = source / "index.json"
    if index.is_file():
        entries = read_json(index)
        if isinstance(entries, dict):
            for video_id, entry in entries.items():
                if video_id in (video.stem, video.name) and isinstance(entry, dict) and isinstance(entry.get("events"), str):
                    return source / entry["events"]
    for candidate in (source / safe_name(video.stem) / "events.json", source / "events.json"):
        if candidate.is_file():
            return candidate
    found = sorted(source.rglob("events.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"{source}: no events.json in it; pass an events.json file or the output folder of "
                        "`uglspot spot`")
    names = listed([str(p.parent.relative_to(source)) for p in found], 5)
    raise UserError(f"{source}: none of its {len(found)} events.json files is for {video.name} (folders: {names}); "
                    "pass the video's own events.json")


def choose_events(spotted: VideoEvents, classes: Sequence[str] | None, min_score: float | None) -> list[SpottedEvent]:
    """The events of ``classes`` (all when None) scoring at least ``min_score``, in time order."""
    if classes:
        present = sorted({e.label for e in spotted.events})
        unknown = [c for c in classes if c not in present]
        if unknown:
            raise UserError(f"{spotted.source}: no event of class {', '.join(map(repr, unknown))}; its classes: "
                            f"{', '.join(present) or 'none (no event)'}")
    chosen = [e for e in spotted.events
              if (not classes or e.label in classes) and (min_score is None or e.score >= min_score)]
    return sorted(chosen, key=lambda e: (e.frame, -e.score))


def clip_spans(times: Sequence[float], before: float, after: float, duration: float) -> list[tuple[float, float, list[int]]]:
    """(start, end, indices of the times inside) per clip: each time's span
    ``[t - before, t + after]`` within ``[0, duration]``, overlapping spans
    joined. ``times`` in ascending order."""
    spans: list[tuple[float, float, list[int]]] = []
    for i, t in enumerate(times):
        start, end = max(0.0, t - before), min(duration, t + after)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end), spans[-1][2] + [i])
        else:
            spans.append((start, end, [i]))
    return spans


@dataclass(frozen=True)
class _Source:
    """What cutting needs of the source: its video stream's clock, the time
    of its first frame, its keyframes' times and its frame rate."""

    time_base: Fraction
    first_pts: int
    keyframes: list[float]  # seconds from the first frame, ascending
    duration: float
    rate: Fraction
    width: int
    height: int

    def seconds(self, pts: int) -> float:
        return float((pts - self.first_pts) * self.time_base)

    def pts(self, seconds: float) -> int:
        return self.first_pts + round(Fraction(seconds).limit_denominator(10 ** 6) / self.time_base)


def _scan(path: Path) -> _Source:
    """Read the packets' timestamps (no decoding)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream; pass the video the events were spotted on")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            stamps, keys = [], []
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                stamps.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
            width, height = stream.codec_context.width, stream.codec_context.height
            time_base = stream.time_base
    except av.error.FFmpegError as exc:
        raise UserError(f"{path}: not a video PyAV can read ({exc}); check the file, or re-encode it") from None
    if not stamps:
        raise UserError(f"{path}: its video stream has no frames")
    first = min(stamps)
    frame = 1 / float(rate)
    duration = float((max(stamps) - first) * time_base) + frame
    return _Source(time_base, first, sorted(float((k - first) * time_base) for k in keys), duration, Fraction(rate),
                   width, height)


def _keyframe_at(source: _Source, seconds: float) -> bool:
    """Whether a keyframe lies within half a frame of ``seconds``."""
    half = 0.5 / float(source.rate)
    i = bisect.bisect_left(source.keyframes, seconds - half)
    return i < len(source.keyframes) and source.keyframes[i] <= seconds + half


def _widen(source: _Source, start: float, end: float) -> tuple[float, float]:
    """The span widened to the keyframe at or before ``start`` and the one at
    or after ``end`` (or the video's end)."""
    half = 0.5 / float(source.rate)
    i = bisect.bisect_right(source.keyframes, start + half) - 1
    j = bisect.bisect_left(source.keyframes, end - half)
    return (source.keyframes[max(i, 0)],
            source.keyframes[j] if j < len(source.keyframes) else source.duration)


def _copy(path: Path, source: _Source, start: float, end: float, out: Path) -> None:
    """The source's packets from the keyframe at ``start`` to the one at ``end``, timestamps from 0."""
    import av

    begin, stop = source.pts(start), source.pts(end)
    whole = end >= source.duration - 0.5 / float(source.rate)
    with av.open(str(path)) as container, av.open(str(out), mode="w", format="mp4") as target:
        stream = container.streams.video[0]
        copied = target.add_stream_from_template(stream)
        container.seek(begin, stream=stream, backward=True)
        started = False
        for packet in container.demux(stream):
            if packet.pts is None or packet.dts is None:
                continue
            if not started:
                if packet.pts < begin - 1 or not packet.is_keyframe:
                    continue
                started = True
                shift = packet.pts
            if not whole and packet.is_keyframe and packet.pts >= stop - 1 and packet.pts > shift:
                break
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = copied
            target.mux(packet)


def _frames(path: Path, source: _Source, start: float, end: float):
    """The decoded frames (rgb24 arrays) whose time lies in ``[start, end)``."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(source.pts(start), stream=stream, backward=True)
        half = 0.5 / float(source.rate)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = source.seconds(frame.pts)
            if t < start - half:
                continue
            if t >= end - half:
                break
            yield frame.to_ndarray(format="rgb24")


def _writer(out: Path, source: _Source):
    from uglspot.synth.writers import VideoWriter

    return VideoWriter(out, source.width, source.height, float(source.rate))


def cut_highlights(events: str | Path, video: str | Path, out: str | Path, *, classes: Sequence[str] | None = None,
                   min_score: float | None = None, before: float = 3.0, after: float = 5.0, mode: str = "auto",
                   reel: bool = False, on_clip: Callable[[Clip], None] | None = None) -> ClipsOutcome:
    """Cut one clip per event (or group of close events) of ``events`` (an
    events.json, or the output folder of ``spot``) from ``video`` into
    ``out`` (a new or empty folder): ``clip_001_<class>_<mm-ss>.mp4`` …,
    ``clips.json``, and with ``reel`` all clips in one ``reel.mp4``."""
    from uglspot.io import safe_name, write_json_atomic
    from uglspot.lock import new_output

    if mode not in MODES:
        raise UserError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    if before < 0 or after < 0 or before + after <= 0:
        raise UserError(f"--before {before:g} / --after {after:g}: need two non-negative numbers of seconds, "
                        "not both 0")
    video, out = Path(video), Path(out)
    if not video.is_file():
        raise UserError(f"{video}: video not found; pass the video file the events were spotted on")
    events_file = find_events_file(events, video)
    spotted = read_events_file(events_file)
    chosen = choose_events(spotted, classes, min_score)
    source = _scan(video)
    late = [e for e in chosen if e.frame / spotted.fps > source.duration + 1 / spotted.fps]
    if late:
        raise UserError(f"{events_file}: event at frame {late[0].frame} ({late[0].frame / spotted.fps:.1f} s) lies "
                        f"past the end of {video} ({source.duration:.1f} s); pass the video these events came from")
    outcome = ClipsOutcome([], out / "clips.json", events_file=events_file,
                           left_out=len(spotted.events) - len(chosen))
    if spotted.video not in (video.stem, video.name):
        outcome.notes.append(f"{events_file} names video {spotted.video!r}, cut from {video.name}")
    with new_output(out, "clips", f"{out}: already exists and is not empty; pass a new --out (clips never overwrite)"):
        spans = clip_spans([e.frame / spotted.fps for e in chosen], before, after, source.duration)
        for number, (start, end, inside) in enumerate(spans, 1):
            members = tuple(chosen[i] for i in inside)
            if mode == "copy":
                start, end = _widen(source, start, end)
            copyable = mode != "encode" and _keyframe_at(source, start) and (
                end >= source.duration - 0.5 / float(source.rate) or _keyframe_at(source, end))
            top = max(members, key=lambda e: e.score)
            at = top.frame / spotted.fps
            file = out / f"clip_{number:03d}_{safe_name(top.label)}_{int(at // 60):02d}-{at % 60:04.1f}.mp4"
            if copyable:
                _copy(video, source, start, end, file)
            else:
                writer = _writer(file, source)
                for image in _frames(video, source, start, end):
                    writer.write(image)
                writer.close()
            clip = Clip(start, end, members, file, "copy" if copyable else "encode")
            outcome.clips.append(clip)
            if on_clip is not None:
                on_clip(clip)
        if reel and outcome.clips:
            outcome.reel = out / "reel.mp4"
            writer = _writer(outcome.reel, source)
            for clip in outcome.clips:
                for image in _frames(video, source, clip.start, clip.end):
                    writer.write(image)
            writer.close()
        write_json_atomic(outcome.index_file, {
            "video": str(video), "events": str(events_file), "before": before, "after": after, "mode": mode,
            "reel": outcome.reel.name if outcome.reel else None, "clips": [c.to_json() for c in outcome.clips]})
    return outcome
