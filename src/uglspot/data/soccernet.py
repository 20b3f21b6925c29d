"""SoccerNet's folder layout and its conversion to and from E2E-Spot JSON.

A SoccerNet dataset is a tree of game folders at any depth, usually
``league/season/game``. Each game holds

- ``Labels-v2.json``: ``{"annotations": [{"gameTime": "1 - 05:00", "label",
  "position": "300000", "team", "visibility"}], "UrlLocal", ...}`` where
  ``position`` is milliseconds within the half (a string in the official
  files) and ``visibility`` is ``"visible"`` or ``"not shown"``;
- ``results_spotting.json`` (predictions): ``{"UrlLocal", "predictions":
  [{"gameTime", "label", "position", "half", "confidence"}]}``.

Keys this module does not use are kept and written back unchanged.

E2E-Spot stores one video per half with id ``<game>/<half>`` and frames at a
chosen fps. The frame of a position is ``int(position_ms / 1000 * fps)``
(truncated), the rule that produced the shared ``soccernetv2`` labels; team
and visibility travel in the event's ``comment`` as ``"home; visible"``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import re
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.errors import BatchFailures, UserError
from uglspot.io import read_json, write_json_atomic

LABELS_FILE = "Labels-v2.json"
PREDICTIONS_FILE = "results_spotting.json"
HALVES = (1, 2)
NOT_SHOWN = "not shown"

_ANNOTATION_KEYS = {"gameTime", "label", "position", "team", "visibility"}
_PREDICTION_KEYS = {"gameTime", "label", "position", "half", "confidence"}
_HALF_NUMBERS: dict[Any, int] = {"1": 1, "2": 2, 1: 1, 2: 2}
_GAME_TIME = re.compile(r"^\s*(\d+)\s*-\s*(\d+):(\d\d)\s*$", re.ASCII)
Record = TypeVar("Record")


@dataclass(slots=True)
class Annotation:
    """One ground-truth event of a game."""

    half: int
    clock_s: int  # minutes*60 + seconds of gameTime; the time when position is missing
    label: str
    game_time: str
    position: int | None = None  # ms within the half
    team: str | None = None
    visibility: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def time_ms(self) -> int:
        """Milliseconds within the half: position, or gameTime when there is none."""
        return self.position if self.position is not None else self.clock_s * 1000

    @property
    def shown(self) -> bool:
        return self.visibility != NOT_SHOWN


@dataclass
class GameLabels:
    """The ground truth of one game, annotations in file order."""

    game: str  # folder of the game relative to the dataset root, '/'-separated
    annotations: list[Annotation] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # UrlLocal, gameHomeTeam, ...


@dataclass(slots=True)
class Prediction:
    """One predicted event, for building a game's predictions."""

    half: int
    position: int  # ms within the half
    label: str
    confidence: float
    game_time: str | None = None  # written as is; derived from half and position when None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GamePredictions:
    """The predictions of one game as columns, one entry per prediction in
    file order (the order decides which of two predictions in one SoccerNet
    slot counts). Columns keep a 225,000-prediction test split cheap to read."""

    game: str
    half: np.ndarray  # (P,) int64
    position: np.ndarray  # (P,) int64, ms within the half
    label: list[str]
    confidence: np.ndarray  # (P,) float64
    records: list[dict[str, Any]]  # per prediction: gameTime and any other keys, written back as they were
    extra: dict[str, Any] = field(default_factory=dict)  # UrlLocal, ...

    @classmethod
    def from_predictions(cls, game: str, predictions: Sequence[Prediction],
                         extra: dict[str, Any] | None = None) -> "GamePredictions":
        return cls(
            game=game,
            half=np.array([p.half for p in predictions], dtype=np.int64),
            position=np.array([p.position for p in predictions], dtype=np.int64),
            label=[p.label for p in predictions],
            confidence=np.array([p.confidence for p in predictions], dtype=np.float64),
            records=[({"gameTime": p.game_time} if p.game_time is not None else {}) | p.extra for p in predictions],
            extra=dict(extra or {}))

    def __len__(self) -> int:
        return len(self.label)

    def predictions(self) -> list[Prediction]:
        return [Prediction(half=h, position=t, label=label, confidence=c, game_time=record.get("gameTime"),
                           extra={k: v for k, v in record.items() if k not in _PREDICTION_KEYS})
                for h, t, label, c, record in zip(self.half.tolist(), self.position.tolist(), self.label,
                                                  self.confidence.tolist(), self.records)]


# ---------------------------------------------------------------- times


def parse_game_time(text: Any, where: str) -> tuple[int, int]:
    """``"1 - 05:00"`` -> (half 1, clock 300 s); anything else is a UserError."""
    match = _GAME_TIME.match(text) if isinstance(text, str) else None
    if match is None or match[3] >= "60":
        raise UserError(f"{where}: gameTime {text!r} does not parse; expected 'HALF - MM:SS' like '1 - 05:00'")
    return int(match[1]), int(match[2]) * 60 + int(match[3])


def format_game_time(half: int, position_ms: int) -> str:
    seconds = position_ms // 1000
    return f"{half} - {seconds // 60:02d}:{seconds % 60:02d}"


def position_to_frame(position_ms: float, fps: float) -> int:
    """Frame of a SoccerNet position at ``fps``: ``int(position_ms / 1000 * fps)``,
    the truncating rule of the shared soccernetv2 conversion."""
    return int(position_ms / 1000 * fps)


def frame_to_position(frame: int, fps: float) -> int:
    """The smallest whole millisecond that ``position_to_frame`` maps back to
    ``frame``, so E2E-Spot -> SoccerNet -> E2E-Spot keeps every frame."""
    position = max(0, math.ceil(frame * 1000 / fps))
    while position > 0 and position_to_frame(position - 1, fps) >= frame:
        position -= 1
    while position_to_frame(position, fps) < frame:
        position += 1
    if position_to_frame(position, fps) != frame:
        raise UserError(f"frame {frame} at {fps} fps has no whole-millisecond position; "
                        "SoccerNet positions need fps <= 1000")
    return position


def prediction_position(frame: int, fps: float) -> int:
    """Milliseconds of a predicted frame, ``int(frame / fps * 1000)``, as
    E2E-Spot's SoccerNet wrapper writes them (the scores people report)."""
    return int(frame / fps * 1000)


# ---------------------------------------------------------------- game paths


def check_game_path(game: str, where: str) -> str:
    """A game id used as a nested output path: '/'-separated, relative, and
    without '.', '..' or empty components."""
    parts = game.split("/")
    if (not game or game.startswith("/") or "\\" in game or "\x00" in game
            or any(part in ("", ".", "..") for part in parts)):
        raise UserError(f"{where}: game {game!r} cannot be a folder path; it must be relative, '/'-separated, "
                        "without '.', '..' or empty parts (like 'league/season/game')")
    return game


def game_dir(root: str | Path, game: str, where: str) -> Path:
    return Path(root).joinpath(*check_game_path(game, where).split("/"))


def find_games(root: str | Path, filename: str) -> list[str]:
    """Games (folders holding ``filename``) at any depth under ``root``, as
    '/'-separated paths relative to it, sorted. The root itself is game '.'."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; expected a folder of games holding {filename}")
    games = [PurePosixPath(*p.parent.relative_to(root).parts).as_posix() for p in root.rglob(filename) if p.is_file()]
    return sorted(games)


# ---------------------------------------------------------------- parsing


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object, found {type(data).__name__}")
    return data


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    if key not in data:
        raise UserError(f"{where}: missing key {key!r}")
    if not isinstance(data[key], list):
        raise UserError(f"{where}: key {key!r} should be a list, found {type(data[key]).__name__}")
    return data[key]


def _integer(value: Any, key: str, where: str) -> int:
    """Whole number from a JSON number or a numeric string ("300000"); a
    fraction is truncated as SoccerNet's own ``int()`` does."""
    if type(value) is int or (type(value) is str and value.isascii() and value.isdigit()):
        number = int(value)
    else:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(value) if isinstance(value, int) else int(float(value))
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{where}: {key} {value!r} is not a number") from None
    if number < 0:
        raise UserError(f"{where}: {key} {value!r} is negative")
    if number >= 2**53:
        raise UserError(f"{where}: {key} {value!r} is too large")
    return number


def _number(value: Any, key: str, where: str) -> float:
    """A float from a JSON number or a numeric string ("0.87", as some
    SoccerNet baselines write confidences)."""
    if type(value) is float:
        return value
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {key} {value!r} is not a number") from None


def _text(record: dict[str, Any], key: str, where: str) -> str:
    if key not in record:
        raise UserError(f"{where}: missing key {key!r}")
    if not isinstance(record[key], str):
        raise UserError(f"{where}: {key} should be a string, found {record[key]!r}")
    return record[key]


def parse_labels(data: Any, source: str, game: str) -> GameLabels:
    top = _object(data, source)
    annotations = []
    for index, record in enumerate(_list(top, "annotations", source)):
        if type(record) is not dict:
            _object(record, f"{source}: annotation #{index}")
        game_time = record.get("gameTime")
        match = _GAME_TIME.match(game_time) if type(game_time) is str else None
        if match is None or match[3] >= "60":
            parse_game_time(game_time, f"{source}: annotation #{index}")  # raises with the details
        position = record.get("position")
        if position is not None or "position" in record:
            if not (type(position) is str and position.isascii() and position.isdigit()):
                position = _integer(position, "position", f"{source}: annotation #{index}")
            position = int(position)
        label = record.get("label")
        if type(label) is not str:
            label = _text(record, "label", f"{source}: annotation #{index}")
        annotations.append(Annotation(  # positional: this loop runs once per event of a split
            int(match[1]), int(match[2]) * 60 + int(match[3]), label, game_time, position, record.get("team"),
            record.get("visibility"),
            {} if record.keys() <= _ANNOTATION_KEYS else {k: v for k, v in record.items() if k not in _ANNOTATION_KEYS}))
    return GameLabels(game=game, annotations=annotations,
                      extra={k: v for k, v in top.items() if k != "annotations"})


def _int_column(values: list[Any], key: str, where: str) -> np.ndarray:
    """(P,) int64 from JSON numbers or numeric strings, converted as a whole;
    element by element only to name the first bad one. Fractions truncate."""
    try:
        column = np.array(values, dtype=np.int64).reshape(len(values))
    except (ValueError, OverflowError, TypeError):
        column = np.array([_integer(v, key, f"{where} #{i}") for i, v in enumerate(values)], dtype=np.int64)
    if len(column) and column.min() < 0:
        index = int(np.argmax(column < 0))
        raise UserError(f"{where} #{index}: {key} {values[index]!r} is negative")
    return column


def _float_column(values: list[Any], key: str, where: str) -> np.ndarray:
    try:
        column = np.array(values, dtype=np.float64).reshape(len(values))
    except (ValueError, OverflowError, TypeError):
        return np.array([_number(v, key, f"{where} #{i}") for i, v in enumerate(values)], dtype=np.float64)
    for index in np.flatnonzero(np.isnan(column)):  # NaN is a number SoccerNet drops; null is a mistake
        if not isinstance(values[index], (float, str)):
            raise UserError(f"{where} #{index}: {key} {values[index]!r} is not a number")
    return column


def parse_game_predictions(data: Any, source: str, game: str) -> GamePredictions:
    """Predictions of one game. As in the official evaluator, the half comes
    from ``half`` and the time from ``position``; ``gameTime`` and other keys
    are kept as written and not parsed."""
    top = _object(data, source)
    records = _list(top, "predictions", source)
    where = f"{source}: prediction"
    try:
        half, position, label, confidence = (list(map(itemgetter(key), records))
                                             for key in ("half", "position", "label", "confidence"))
    except (KeyError, TypeError):
        for index, record in enumerate(records):
            record = _object(record, f"{where} #{index}")
            for key in ("half", "position", "label", "confidence"):
                if key not in record:
                    raise UserError(f"{where} #{index}: missing key {key!r}")
        raise
    if not set(map(type, label)) <= {str}:
        index, value = next((i, v) for i, v in enumerate(label) if type(v) is not str)
        raise UserError(f"{where} #{index}: label should be a string, found {value!r}")
    halves = list(map(_HALF_NUMBERS.get, half))  # the usual "1"/"2"/1/2 without parsing each one
    return GamePredictions(
        game=game, half=np.array(halves, dtype=np.int64) if None not in halves else _int_column(half, "half", where),
        position=_int_column(position, "position", where),
        label=label, confidence=_float_column(confidence, "confidence", where), records=records,
        extra={k: v for k, v in top.items() if k != "predictions"})


def load_json_fast(path: str | Path) -> Any:
    """Parse with orjson (several times faster than the standard library on
    a test split of predictions); on anything it refuses (NaN, huge integers,
    bad syntax) fall back to ``read_json``, which accepts what Python's json
    does and names the line and column of an error."""
    try:
        import orjson
    except ImportError:
        return read_json(path)
    try:
        return orjson.loads(Path(path).read_bytes())
    except (orjson.JSONDecodeError, OSError):
        return read_json(path)


def read_labels(path: str | Path, game: str) -> GameLabels:
    return parse_labels(load_json_fast(path), str(path), game)


def read_game_predictions(path: str | Path, game: str) -> GamePredictions:
    return parse_game_predictions(load_json_fast(path), str(path), game)


def read_labels_dir(root: str | Path) -> list[GameLabels]:
    """Every ``<game>/Labels-v2.json`` under ``root``; reads them all and then
    lists every bad file at once."""
    return _read_tree(root, LABELS_FILE, read_labels)


def read_predictions_dir(root: str | Path) -> list[GamePredictions]:
    """Every ``<game>/results_spotting.json`` under ``root``."""
    return _read_tree(root, PREDICTIONS_FILE, read_game_predictions)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing: hundreds of thousands
    of new dicts (none in a cycle) would otherwise trigger full collections
    that cost about 15% of reading a test split."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_tree(root: str | Path, filename: str, reader: Callable[[Path, str], Record]) -> list[Record]:
    games = find_games(root, filename)
    out, failures = [], []
    with _collection_paused():
        for game in games:
            try:
                out.append(reader(Path(root) / game / filename, game))
            except UserError as exc:
                failures.append((game, str(exc)))
    if failures:
        raise BatchFailures(f"{filename} files", failures)
    return out


# ---------------------------------------------------------------- writing


def labels_to_json(labels: GameLabels) -> dict[str, Any]:
    annotations = []
    for a in labels.annotations:
        record: dict[str, Any] = {"gameTime": a.game_time, "label": a.label}
        if a.position is not None:
            record["position"] = str(a.position)
        if a.team is not None:
            record["team"] = a.team
        if a.visibility is not None:
            record["visibility"] = a.visibility
        record.update(a.extra)
        annotations.append(record)
    return {**labels.extra, "annotations": annotations}


def predictions_to_json(predictions: GamePredictions) -> dict[str, Any]:
    out = []
    for prediction in predictions.predictions():
        out.append({
            "gameTime": prediction.game_time if prediction.game_time is not None
            else format_game_time(prediction.half, prediction.position),
            "label": prediction.label, "position": str(prediction.position), "half": str(prediction.half),
            "confidence": prediction.confidence, **prediction.extra})
    return {**predictions.extra, "predictions": out}


def write_labels(root: str | Path, labels: GameLabels) -> Path:
    path = game_dir(root, labels.game, str(root)) / LABELS_FILE
    write_json_atomic(path, labels_to_json(labels))
    return path


def write_game_predictions(root: str | Path, predictions: GamePredictions) -> Path:
    path = game_dir(root, predictions.game, str(root)) / PREDICTIONS_FILE
    write_json_atomic(path, predictions_to_json(predictions))
    return path


# ---------------------------------------------------------------- conversion


def split_video_id(video_id: str, where: str) -> tuple[str, int]:
    """``league/season/game/2`` -> (``league/season/game``, 2)."""
    game, _, half = video_id.rpartition("/")
    if not game or half not in ("1", "2"):
        raise UserError(f"{where}: video {video_id!r} is not a SoccerNet half; expected '<game>/1' or '<game>/2'")
    return check_game_path(game, where), int(half)


def _comment(annotation: Annotation) -> str:
    team = annotation.team if annotation.team is not None else "not applicable"
    visibility = annotation.visibility if annotation.visibility is not None else "visible"
    return f"{team}; {visibility}"


def soccernet_to_e2e(
    games: Sequence[GameLabels],
    fps: float | None,
    reference: Mapping[str, Video] | None = None,
    half_duration_s: float | None = None,
) -> list[Video]:
    """One E2E-Spot video per half (``<game>/1``, ``<game>/2``), sorted by id.

    Each half's fps, num_frames, width and height come from ``reference``
    (e.g. the E2E-Spot file of the extracted frames) when it has the video;
    otherwise fps is ``fps`` and num_frames is ``ceil(half_duration_s * fps)``
    when a duration is given, else one past the last event (0 for a half
    without events): the true length is unknown without the video.
    Events are sorted by frame, ties in file order.
    """
    reference = reference or {}
    videos = []
    for labels in games:
        check_game_path(labels.game, f"{labels.game}/{LABELS_FILE}")
        for index, a in enumerate(labels.annotations):
            if a.half not in HALVES:
                raise UserError(f"{labels.game}/{LABELS_FILE}: annotation #{index}: half {a.half} in gameTime "
                                f"{a.game_time!r}; SoccerNet games have halves 1 and 2")
        for half in HALVES:
            video_id = f"{labels.game}/{half}"
            ref = reference.get(video_id)
            video_fps = ref.fps if ref is not None else fps
            if video_fps is None or video_fps <= 0:
                raise UserError(f"{video_id}: no fps for this half; pass --fps or a reference file that has it")
            events = [Event(frame=position_to_frame(a.time_ms, video_fps), label=a.label, comment=_comment(a))
                      for a in labels.annotations if a.half == half]
            events.sort(key=lambda e: e.frame)
            if ref is not None:
                num_frames = ref.num_frames
            elif half_duration_s is not None:
                num_frames = math.ceil(half_duration_s * video_fps - 1e-9)
            else:
                num_frames = events[-1].frame + 1 if events else 0
            videos.append(Video(video=video_id, num_frames=num_frames, fps=video_fps, events=events,
                                width=ref.width if ref is not None else None,
                                height=ref.height if ref is not None else None))
    videos.sort(key=lambda v: v.video)
    return videos


def _team_visibility(comment: str) -> tuple[str, str]:
    team, sep, visibility = comment.partition(";")
    if not sep or not team.strip() or not visibility.strip():
        return "not applicable", "visible"
    return team.strip(), visibility.strip()


def e2e_to_soccernet(videos: Iterable[Video], source: str) -> list[GameLabels]:
    """Group E2E-Spot halves into SoccerNet games. Positions are the smallest
    millisecond that maps back to the same frame at the video's fps, so the
    conversion back is exact; a comment ``"team; visibility"`` gives team and
    visibility, any other comment gives ``"not applicable"`` and ``"visible"``."""
    games: dict[str, GameLabels] = {}
    halves: dict[str, list[tuple[int, Video]]] = {}
    for video in videos:
        game, half = split_video_id(video.video, source)
        if video.fps <= 0:
            raise UserError(f"{source}: video {video.video!r} has fps {video.fps}; a position needs a real fps")
        halves.setdefault(game, []).append((half, video))
    for game in sorted(halves):
        annotations = []
        for half, video in sorted(halves[game], key=lambda hv: hv[0]):
            for event in video.events:
                position = frame_to_position(event.frame, video.fps)
                team, visibility = _team_visibility(event.comment)
                annotations.append(Annotation(half=half, clock_s=position // 1000, label=event.label,
                                              game_time=format_game_time(half, position), position=position,
                                              team=team, visibility=visibility))
        games[game] = GameLabels(game=game, annotations=annotations, extra={"UrlLocal": game + "/"})
    return list(games.values())


def predictions_to_soccernet(
    predictions: Iterable[VideoPredictions], fps: float | Mapping[str, float], source: str
) -> list[GamePredictions]:
    """E2E-Spot predictions -> one ``results_spotting.json`` record per game;
    position ``int(frame / fps * 1000)`` ms, gameTime from half and position.
    ``fps`` is one rate for all videos or a rate per video id."""
    games: dict[str, list[Prediction]] = {}
    for video in predictions:
        game, half = split_video_id(video.video, source)
        if isinstance(fps, Mapping):
            if video.video not in fps:
                raise UserError(f"{source}: video {video.video!r} is not in the reference; its fps is unknown")
            video_fps = fps[video.video]
        else:
            video_fps = fps
        if video_fps <= 0:
            raise UserError(f"{source}: video {video.video!r}: fps {video_fps} must be positive")
        out = games.setdefault(game, [])
        for index, event in enumerate(video.events):
            if event.frame < 0:
                raise UserError(f"{source}: video {video.video!r}, event #{index}: negative frame {event.frame}")
            position = prediction_position(event.frame, video_fps)
            out.append(Prediction(half=half, position=position, label=event.label,
                                  confidence=float(event.score if event.score is not None else 0.0),
                                  game_time=format_game_time(half, position)))
    return [GamePredictions.from_predictions(game, preds, {"UrlLocal": game})
            for game, preds in sorted(games.items())]
