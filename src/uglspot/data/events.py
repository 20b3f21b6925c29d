"""The record of a spotted video, as ``events.json``: written by ``uglspot
spot``, ``predict`` and ``demo`` (through ``uglspot.engine.infer``) and read
by ``uglspot report``::

    {"video", "fps", "num_frames", "events": [{"frame", "time", "label", "score",
     "entities": [{"box": [x1, y1, x2, y2] in [0, 1], "class", "weight"}]}]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uglspot.data.labels import Event, VideoPredictions, parse_predicted_event
from uglspot.errors import UserError
from uglspot.io import read_json


@dataclass(frozen=True)
class EntityWeight:
    """An entity the model attended to on an event's frame."""
    box: tuple[float, float, float, float]  # xyxy in [0, 1] of the frame
    cls: str
    weight: float


@dataclass
class SpottedEvent:
    frame: int
    label: str
    score: float
    entities: list[EntityWeight] = field(default_factory=list)  # most attended first


@dataclass
class VideoEvents:
    """The spotted events of one video."""

    video: str
    fps: float
    num_frames: int
    events: list[SpottedEvent]
    source: Path | None = None  # the events.json it was read from

    def seconds(self, event: SpottedEvent) -> float:
        return event.frame / self.fps if self.fps > 0 else 0.0

    def as_predictions(self) -> VideoPredictions:
        return VideoPredictions(self.video, [Event(e.frame, e.label, score=e.score) for e in self.events])

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "fps": self.fps, "num_frames": self.num_frames,
                "events": [{"frame": e.frame, "time": round(e.frame / self.fps, 3) if self.fps > 0 else None,
                            "label": e.label, "score": round(e.score, 6),
                            "entities": [{"box": [round(v, 4) for v in entity.box], "class": entity.cls,
                                          "weight": round(entity.weight, 4)} for entity in e.entities]}
                           for e in self.events]}


def _number(raw: Any, key: str, where: str) -> float:
    value = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: key {key!r} should be a number, found {value!r}")
    if not math.isfinite(value) or abs(value) >= 2 ** 63:
        raise UserError(f"{where}: key {key!r} should be a finite number that fits int64, found {value!r}")
    return float(value)


def _entity(raw: Any, where: str) -> EntityWeight:
    box = raw.get("box") if isinstance(raw, dict) else None
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        raise UserError(f"{where}: 'box' should be [x1, y1, x2, y2] in [0, 1], found {box!r}")
    return EntityWeight(tuple(float(v) for v in box), str(raw.get("class", "")), _number(raw, "weight", where))


def read_events_file(path: Path) -> VideoEvents:
    """Read one ``events.json``; errors name the file and the event index."""
    data = read_json(path)
    where = str(path)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object with 'video' and 'events'")
    video = data.get("video")
    if not isinstance(video, str):
        raise UserError(f"{where}: key 'video' should be a string, found {video!r}")
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise UserError(f"{where}: key 'events' should be a list")
    events = []
    for index, raw in enumerate(raw_events):
        event_where = f"{where}: event #{index}"
        event = parse_predicted_event(raw, event_where)
        entities = [_entity(entity, f"{event_where}, entity #{k}") for k, entity in enumerate(raw.get("entities") or [])]
        events.append(SpottedEvent(event.frame, event.label, float(event.score), entities))
    return VideoEvents(video, _number(data, "fps", where), int(_number(data, "num_frames", where)), events, path)
