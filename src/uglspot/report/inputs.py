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
``--videos DIR``, else ``report-inputs.json``'s ``videos``, else ``RUN/videos``,
by training's own lookup (``uglspot.data.inputs.locate_video``): the id as a
path relative to that folder (with or without a video extension), a SoccerNet
half ``<game>/1`` as ``<game>/1_224p.mkv``, or a file named by the id's safe name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uglspot.data.inputs import locate_video
from uglspot.data.events import VideoEvents, read_events_file
from uglspot.data.labels import Video, check_predictions_match, find_class_list, read_class_list, read_e2e_labels
from uglspot.errors import UserError
from uglspot.io import read_json

INPUTS_FILE = "report-inputs.json"


@dataclass
class ReportInputs:
    title: str
    variants: dict[str, list[VideoEvents]]  # variant name -> videos, sorted by id
    classes: list[str] | None
    truth: list[Video] | None
    videos: dict[str, Path]  # video id -> file, for the ones found
    video_notes: dict[str, str] = field(default_factory=dict)  # video id -> why it has no file (for captions)
    notes: list[str] = field(default_factory=list)  # sentences shown under the title (plain text)


def read_variant(folder: Path) -> list[VideoEvents]:
    files = sorted(folder.rglob("events.json"))
    if not files:
        raise UserError(f"{folder}: no events.json found (at any depth); is this a predictions folder?")
    videos = [read_events_file(path) for path in files]
    seen: dict[str, Path] = {}
    for item in videos:
        if item.video in seen:
            raise UserError(f"{item.source}: video {item.video!r} also has events in {seen[item.video]}; "
                            "keep one events.json per video in a variant")
        seen[item.video] = item.source
    return sorted(videos, key=lambda v: v.video)


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
        for items in variants.values():
            for item in items:
                check_predictions_match([item.as_predictions()], truth_videos, class_list, item.source,
                                        "the class list; check --classes")

    video_folder = videos or from_manifest("videos") or run / "videos"
    ids = sorted({v.video for vs in variants.values() for v in vs})
    found: dict[str, Path] = {}
    notes: dict[str, str] = {}
    if video_folder.is_dir():
        for video_id in ids:
            try:
                path = locate_video(video_folder, video_id)
            except UserError:
                notes[video_id] = "video refused: its id is not a name inside the videos folder"
                continue
            if path is not None:
                found[video_id] = path
    return ReportInputs(title=title or f"uglspot report: {run.resolve().name}", variants=variants,
                        classes=class_list, truth=truth_videos, videos=found, video_notes=notes)
