"""What ``uglspot report`` reads, and how it finds it.

A *run directory* looks like this (``uglspot demo`` writes exactly this)::

    RUN/
      report-inputs.json            optional: {"truth": ..., "classes": ..., "videos": ...}
                                    paths relative to RUN; command-line options win
      predictions/<variant>/**/events.json
                                    one file per video, any depth, as ``uglspot spot``
                                    writes it: {"video", "fps", "num_frames", "events":
                                    [{"frame", "time", "label", "score", "entities":
                                    [{"box": [x1, y1, x2, y2] in [0, 1], "class", "weight"}]}]}

Each folder under ``predictions/`` is one variant (e.g. ``e2e_rny002`` and
``ugl_rny002``); the table shows them side by side. Given a folder without
``predictions/``, that folder itself is the only variant.

Ground truth (optional; without it the report has timelines and a gallery
but no AP table or precision-recall curves) is an E2E-Spot ``{split}.json``
with ``class.txt`` beside it (or given by ``--classes``); it is found from
``--truth``, else ``report-inputs.json``, else ``RUN/truth.json``.

Videos (optional; the gallery needs them to show event frames) are found in
``--videos DIR``, else ``report-inputs.json``'s ``videos``, else ``RUN/videos``:
a file named ``safe_name(video id)`` with a video extension, or the video id
itself as a path relative to that folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uglspot.data.labels import Event, Video, VideoPredictions, find_class_list, read_class_list, read_e2e_labels
from uglspot.errors import UserError
from uglspot.io import read_json, safe_name
from uglspot.video import VIDEO_SUFFIXES

INPUTS_FILE = "report-inputs.json"


@dataclass(frozen=True)
class EntityWeight:
    box: tuple[float, float, float, float]  # xyxy in [0, 1] of the frame
    cls: str
    weight: float


@dataclass
class SpottedEvent:
    frame: int
    label: str
    score: float
    time: float
    entities: list[EntityWeight] = field(default_factory=list)


@dataclass
class VideoEvents:
    """One ``events.json``: the spotted events of one video."""

    video: str
    fps: float
    num_frames: int
    events: list[SpottedEvent]
    source: Path

    def as_predictions(self) -> VideoPredictions:
        return VideoPredictions(self.video, [Event(e.frame, e.label, score=e.score) for e in self.events])


@dataclass
class ReportInputs:
    title: str
    variants: dict[str, list[VideoEvents]]  # variant name -> videos, sorted by id
    classes: list[str] | None
    truth: list[Video] | None
    videos: dict[str, Path]  # video id -> file, for the ones found


def _number(raw: Any, key: str, where: str) -> float:
    value = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: key {key!r} should be a number, found {value!r}")
    return float(value)


def parse_events_file(path: Path) -> VideoEvents:
    """Read one ``events.json``; errors name the file and the event index."""
    data = read_json(path)
    where = str(path)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object with 'video' and 'events'")
    video = data.get("video")
    if not isinstance(video, str):
        raise UserError(f"{where}: key 'video' should be a string, found {video!r}")
    fps = _number(data, "fps", where)
    num_frames = int(_number(data, "num_frames", where))
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise UserError(f"{where}: key 'events' should be a list")
    events = []
    for index, raw in enumerate(raw_events):
        event_where = f"{where}: event #{index}"
        frame = _number(raw, "frame", event_where)
        if frame != int(frame):
            raise UserError(f"{event_where}: frame should be an integer, found {frame}")
        label = raw.get("label")
        if not isinstance(label, str):
            raise UserError(f"{event_where}: key 'label' should be a string, found {label!r}")
        score = _number(raw, "score", event_where)
        time = float(raw["time"]) if isinstance(raw.get("time"), (int, float)) else frame / fps if fps > 0 else 0.0
        entities = []
        for entity_index, entity in enumerate(raw.get("entities") or []):
            entity_where = f"{event_where}, entity #{entity_index}"
            box = entity.get("box") if isinstance(entity, dict) else None
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise UserError(f"{entity_where}: 'box' should be [x1, y1, x2, y2] in [0, 1], found {box!r}")
            entities.append(EntityWeight(tuple(float(v) for v in box), str(entity.get("class", "")),
                                         _number(entity, "weight", entity_where)))
        events.append(SpottedEvent(int(frame), label, score, time, entities))
    return VideoEvents(video, fps, num_frames, events, path)


def read_variant(folder: Path) -> list[VideoEvents]:
    files = sorted(folder.rglob("events.json"))
    if not files:
        raise UserError(f"{folder}: no events.json found (at any depth); is this a predictions folder?")
    videos = [parse_events_file(path) for path in files]
    seen: dict[str, Path] = {}
    for item in videos:
        if item.video in seen:
            raise UserError(f"{item.source}: video {item.video!r} also has events in {seen[item.video]}; "
                            "keep one events.json per video in a variant")
        seen[item.video] = item.source
    return sorted(videos, key=lambda v: v.video)


def _find_video(folder: Path, video_id: str) -> Path | None:
    direct = folder / video_id
    if direct.is_file() and ".." not in Path(video_id).parts:
        return direct
    for extension in VIDEO_SUFFIXES:
        candidate = folder / f"{safe_name(video_id)}{extension}"
        if candidate.is_file():
            return candidate
    return None


def load_inputs(run: Path, truth: Path | None = None, classes: Path | None = None,
                videos: Path | None = None, title: str | None = None) -> ReportInputs:
    """Gather everything a report shows from a run or predictions directory."""
    if not run.is_dir():
        raise UserError(f"{run}: not a directory; pass a run directory (with predictions/<variant>/) "
                        "or a folder of events.json files")
    manifest: dict[str, Any] = {}
    if (run / INPUTS_FILE).is_file():
        data = read_json(run / INPUTS_FILE)
        if not isinstance(data, dict):
            raise UserError(f"{run / INPUTS_FILE}: expected a JSON object with truth/classes/videos paths")
        manifest = data

    def from_manifest(key: str) -> Path | None:
        value = manifest.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise UserError(f"{run / INPUTS_FILE}: key {key!r} should be a path string, found {value!r}")
        return run / value

    predictions = run / "predictions"
    if predictions.is_dir():
        folders = sorted(p for p in predictions.iterdir() if p.is_dir())
        if not folders:
            raise UserError(f"{predictions}: no variant folders; expected predictions/<variant>/**/events.json")
        variants = {folder.name: read_variant(folder) for folder in folders}
    else:
        variants = {run.name: read_variant(run)}

    truth_path = truth or from_manifest("truth") or (run / "truth.json" if (run / "truth.json").is_file() else None)
    class_list: list[str] | None = None
    truth_videos: list[Video] | None = None
    classes_path = classes or from_manifest("classes")
    if truth_path is not None:
        class_list = read_class_list(classes_path or find_class_list(truth_path))
        truth_videos = read_e2e_labels(truth_path, class_list)
    elif classes_path is not None:
        class_list = read_class_list(classes_path)
    if class_list is None:
        class_list = sorted({e.label for vs in variants.values() for v in vs for e in v.events}) or None

    if truth_videos is not None:
        known = {v.video for v in truth_videos}
        for name, items in variants.items():
            for item in items:
                if item.video not in known:
                    raise UserError(f"{item.source}: video {item.video!r} is not in the ground truth {truth_path}; "
                                    "check that predictions and truth come from the same split")
                for index, event in enumerate(item.events):
                    if class_list is not None and event.label not in class_list:
                        raise UserError(f"{item.source}: event #{index}: label {event.label!r} is not in the "
                                        "class list; check --classes")

    video_folder = videos or from_manifest("videos") or run / "videos"
    ids = sorted({v.video for vs in variants.values() for v in vs})
    found: dict[str, Path] = {}
    if video_folder.is_dir():
        for video_id in ids:
            path = _find_video(video_folder, video_id)
            if path is not None:
                found[video_id] = path
    return ReportInputs(title=title or f"uglspot report: {run.resolve().name}", variants=variants,
                        classes=class_list, truth=truth_videos, videos=found)
