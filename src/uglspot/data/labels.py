"""Typed label records and the E2E-Spot file formats.

E2E-Spot keeps a dataset as ``class.txt`` (one class per line; class i is
index i+1, 0 is "no event") and ``{split}.json``: a list of videos
``{"video", "num_frames", "num_events", "events": [{"frame", "label",
"comment"}], "fps", "width", "height"}``. Predictions use the same shape with
a ``score`` per event. SoccerNet's folder layout lives in
``uglspot.data.soccernet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from uglspot.errors import UserError
from uglspot.io import read_json, write_json_atomic

MAX_FRAMES = 2 ** 63  # frame numbers and counts must fit int64


@dataclass(frozen=True)
class Event:
    frame: int
    label: str
    comment: str = ""
    score: float | None = None  # None for ground truth, a confidence for predictions


@dataclass
class Video:
    video: str
    num_frames: int
    fps: float
    events: list[Event] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys we keep but do not use, e.g. _source_info


@dataclass
class VideoPredictions:
    video: str
    events: list[Event] = field(default_factory=list)


def read_class_list(path: str | Path) -> list[str]:
    """Class names of ``class.txt`` in file order (class i has index i+1)."""
    from uglspot.io import read_text

    path = Path(path)
    lines = read_text(path, "class list (class.txt, one class name per line)").splitlines()
    classes = [line.strip() for line in lines if line.strip()]
    if not classes:
        raise UserError(f"{path}: class list is empty; write one class name per line")
    seen: set[str] = set()
    for number, name in enumerate(classes, 1):
        if name in seen:
            raise UserError(f"{path}: class {name!r} is listed twice (entry {number}); keep one")
        seen.add(name)
    return classes


def find_class_list(labels_path: str | Path) -> Path:
    """``class.txt`` beside a labels file, as E2E-Spot lays datasets out."""
    candidate = Path(labels_path).parent / "class.txt"
    if not candidate.is_file():
        raise UserError(f"{labels_path}: no class.txt beside it; pass the class list explicitly (--classes FILE)")
    return candidate


def _require(record: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, found {type(record).__name__}")
    if key not in record:
        raise UserError(f"{where}: missing key {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"{where}: key {key!r} should be {names}, found {value!r}")
    return value


def parse_e2e_labels(
    data: Any, classes: Sequence[str] | None, source: str, allow_past_end: bool = False,
    past_end_option: str | None = None,
) -> list[Video]:
    """Validate and convert parsed E2E-Spot JSON. Errors name the file, the
    video and the event index. ``allow_past_end`` keeps events at or beyond
    ``num_frames`` (videos cut shorter than their labels); training drops them.
    ``past_end_option`` is how the calling command sets ``allow_past_end``
    (``--allow-events-past-end``), for the error that refuses such an event."""
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of videos, found {type(data).__name__}")
    known = set(classes) if classes is not None else None
    videos: list[Video] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(data):
        where = f"{source}: video #{index}"
        video_id = _require(record, "video", str, where)
        where = f"{source}: video {video_id!r}"
        if video_id in seen:
            raise UserError(f"{where}: duplicate video id (also video #{seen[video_id]}); video ids must be unique")
        seen[video_id] = index
        num_frames = _require(record, "num_frames", int, where)
        if not 0 <= num_frames < MAX_FRAMES:
            raise UserError(f"{where}: num_frames {num_frames} is outside [0, 2^63)")
        fps = float(_require(record, "fps", (int, float), where))
        if not (math.isfinite(fps) and fps > 0) and fps != -1:
            raise UserError(f"{where}: fps {fps!r} must be a finite rate > 0 (or -1: the video file's own)")
        raw_events = _require(record, "events", list, where)
        events = []
        for event_index, raw in enumerate(raw_events):
            event_where = f"{where}, event #{event_index}"
            frame = _require(raw, "frame", int, event_where)
            label = _require(raw, "label", str, event_where)
            if frame >= MAX_FRAMES:
                raise UserError(f"{event_where}: frame {frame} is outside [0, 2^63)")
            if frame < 0 or (frame >= num_frames and not allow_past_end):
                raise UserError(
                    f"{event_where}: frame {frame} is outside [0, {num_frames}); check num_frames and fps"
                    + ("" if frame < 0 or past_end_option is None else
                       f", or pass {past_end_option} if the video really ends before its labels "
                       "(SoccerNet's own conversions have 13 such events)"))
            if known is not None and label not in known:
                raise UserError(f"{event_where}: label {label!r} is not in class.txt; add it there or fix the label")
            comment = raw.get("comment", "")
            events.append(Event(frame=frame, label=label, comment=comment if isinstance(comment, str) else str(comment)))
        # num_events is informational: E2E-Spot's own files disagree with their
        # event lists in places, so the list is the truth and writers recount.
        extra = {k: v for k, v in record.items()
                 if k not in {"video", "num_frames", "num_events", "events", "fps", "width", "height"}}
        videos.append(Video(video=video_id, num_frames=num_frames, fps=fps, events=events,
                            width=record.get("width"), height=record.get("height"), extra=extra))
    return videos


def read_e2e_labels(
    path: str | Path, classes: Sequence[str] | None = None, allow_past_end: bool = False,
    past_end_option: str | None = None,
) -> list[Video]:
    """Read an E2E-Spot ``{split}.json``; validate labels against ``classes``
    when given (``allow_past_end``, ``past_end_option``: see :func:`parse_e2e_labels`)."""
    return parse_e2e_labels(read_json(path), classes, str(path), allow_past_end, past_end_option)


def e2e_labels_to_json(videos: Iterable[Video]) -> list[dict[str, Any]]:
    out = []
    for video in videos:
        record: dict[str, Any] = dict(video.extra)
        record.update({
            "video": video.video,
            "num_frames": video.num_frames,
            "num_events": len(video.events),
            "events": [{"frame": e.frame, "label": e.label, "comment": e.comment} for e in video.events],
            "fps": video.fps,
        })
        if video.width is not None:
            record["width"] = video.width
        if video.height is not None:
            record["height"] = video.height
        out.append(record)
    return out


def write_e2e_labels(videos: Iterable[Video], path: str | Path) -> None:
    write_json_atomic(path, e2e_labels_to_json(videos))


def parse_predicted_event(raw: Any, where: str) -> Event:
    """One predicted event ``{"frame", "label", "score", ...}``: the rule every
    predictions file follows (``predictions.json``, ``events.json``)."""
    frame = _require(raw, "frame", int, where)
    if not 0 <= frame < MAX_FRAMES:
        raise UserError(f"{where}: frame {frame} is outside [0, 2^63)")
    label = _require(raw, "label", str, where)
    score = float(_require(raw, "score", (int, float), where))
    if not math.isfinite(score):
        raise UserError(f"{where}: score {score!r} is not a finite number")
    return Event(frame=frame, label=label, score=score)


def parse_predictions(data: Any, source: str) -> list[VideoPredictions]:
    """Predictions in E2E-Spot form: ``[{"video", "events": [{"frame", "label", "score"}]}]``."""
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of videos with predicted events")
    out: list[VideoPredictions] = []
    seen: set[str] = set()
    for index, record in enumerate(data):
        video_id = _require(record, "video", str, f"{source}: video #{index}")
        where = f"{source}: video {video_id!r}"
        if video_id in seen:
            raise UserError(f"{where}: duplicate video id; merge its events into one entry")
        seen.add(video_id)
        events = []
        for event_index, raw in enumerate(_require(record, "events", list, where)):
            events.append(parse_predicted_event(raw, f"{where}, event #{event_index}"))
        out.append(VideoPredictions(video=video_id, events=events))
    return out


def read_predictions(path: str | Path) -> list[VideoPredictions]:
    return parse_predictions(read_json(path), str(path))


def read_prediction_sources(paths: Sequence[str | Path]) -> list[tuple[str, list[VideoPredictions]]]:
    """Predictions from each of ``paths``, with the file they came from: a
    predictions file (``[{"video", "events"}]``), one video's ``events.json``
    as ``spot`` writes it (``{"video", "events", ...}``), or a folder: every
    ``events.json`` below it (``spot``'s output), else its ``predictions.json``
    (``predict``'s). A video found twice is refused, naming both files."""
    found: list[tuple[str, list[VideoPredictions]]] = []
    origin: dict[str, str] = {}
    for path in map(Path, paths):
        for source in _prediction_files(path):
            data = read_json(source)
            preds = parse_predictions([data] if isinstance(data, dict) else data, str(source))
            for pred in preds:
                if pred.video in origin:
                    raise UserError(f"{source}: video {pred.video!r} is also in {origin[pred.video]}; "
                                    "give each video's predictions once")
                origin[pred.video] = str(source)
            found.append((str(source), preds))
    return found


def _prediction_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]  # a missing file is reported by read_json
    try:
        events = sorted(path.rglob("events.json"))
    except OSError as exc:
        raise UserError(f"{path}: cannot list the folder ({exc.strerror or exc}); check its permissions") from None
    if events:
        return events
    if (path / "predictions.json").is_file():
        return [path / "predictions.json"]
    raise UserError(f"{path}: no events.json below it and no predictions.json in it; pass the output folder of "
                    "`uglspot spot` or `uglspot predict`, or a predictions file")


def write_predictions(predictions: Iterable[VideoPredictions], path: str | Path) -> None:
    data = [{"video": p.video,
             "events": [{"frame": e.frame, "label": e.label, "score": e.score} for e in p.events]}
            for p in predictions]
    write_json_atomic(path, data)


def check_predictions_match(
    predictions: Sequence[VideoPredictions], truth: Sequence[Video], classes: Sequence[str], source: str | Path,
    class_source: str = "class.txt",
) -> None:
    """Every predicted video must exist in the ground truth and every label be
    a known class (of ``class_source``, as the message names it): the one
    predictions-vs-ground-truth check of ``eval frames`` and the report."""
    known_videos = {v.video for v in truth}
    known_classes = set(classes)
    for pred in predictions:
        if pred.video not in known_videos:
            raise UserError(f"{source}: video {pred.video!r} has predictions but is not in the ground truth; "
                            "check that both files come from the same split")
        for index, event in enumerate(pred.events):
            if event.label not in known_classes:
                raise UserError(f"{source}: video {pred.video!r}, event #{index}: label {event.label!r} "
                                f"is not in {class_source}")
