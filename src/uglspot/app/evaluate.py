"""Score predictions against ground truth with the metric of the field
(``uglspot eval frames``, ``uglspot eval soccernet``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from uglspot.errors import UserError

if TYPE_CHECKING:
    from uglspot.data.labels import Video, VideoPredictions
    from uglspot.metrics.soccernet import AverageMapResult
    from uglspot.metrics.spotting import FrameMapResult


def parse_tolerances(text: str) -> tuple[int, ...]:
    """Frame tolerances written as ``0,1,2,4`` (``uglspot.metrics.spotting.parse_tolerances``, imported
    here when called so that importing the API stays instant); ValueError names the wrong part."""
    from uglspot.metrics.spotting import parse_tolerances as parse

    return parse(text)


@dataclass
class FrameEvaluation:
    """E2E-Spot's mAP at frame tolerances of one predictions file."""

    result: FrameMapResult  # AP per class and mAP at each tolerance, fractions in [0, 1]
    classes: list[str]
    videos: int  # ground-truth videos
    events: int  # ground-truth events
    predictions: int  # predicted events scored (after NMS when asked)

    def table(self) -> str:
        """AP per class (rows) at each tolerance (columns), in percent."""
        return format_table(self.result, self.classes)


def evaluate_predictions(ground_truth: str | Path, predictions: str | Path | Sequence[str | Path],
                         classes: str | Path | None = None, tolerances: Sequence[int] = (0, 1, 2, 4),
                         nms: int | None = None, allow_past_end: bool = False) -> FrameEvaluation:
    """mAP at frame ``tolerances`` of predictions against an E2E-Spot
    ground-truth file (class list: ``classes``, default the class.txt beside
    the ground truth); ``nms``: first apply NMS with a window of ± that many
    frames. ``predictions``: E2E-Spot predictions files, ``events.json``
    files of ``spot``, or the folders ``spot`` and ``predict`` write
    (``uglspot.data.labels.read_prediction_sources``)."""
    from uglspot.data.labels import (check_predictions_match, find_class_list, read_class_list,
                                     read_e2e_labels, read_prediction_sources)
    from uglspot.metrics.spotting import frame_map
    from uglspot.post.nms import nms_predictions

    class_path = Path(classes) if classes else find_class_list(ground_truth)
    names = read_class_list(class_path)
    truth = read_e2e_labels(ground_truth, names, allow_past_end=allow_past_end,
                            past_end_option="--allow-events-past-end")
    sources = read_prediction_sources([predictions] if isinstance(predictions, (str, Path)) else predictions)
    for source, part in sources:
        check_predictions_match(part, truth, names, source)
        check_prediction_frames(part, truth, source, allow_past_end)
    preds = [pred for _, part in sources for pred in part]
    if not any(v.events for v in truth):
        raise UserError(f"{ground_truth}: no ground-truth events, so mAP is undefined; "
                        "check that this is the right split")
    if nms is not None:
        preds = nms_predictions(preds, nms)
    result = frame_map(truth, preds, names, tuple(tolerances))
    return FrameEvaluation(result, list(names), len(truth), sum(len(v.events) for v in truth),
                           sum(len(p.events) for p in preds))


def check_prediction_frames(preds: Sequence[VideoPredictions], truth: Sequence[Video], source: str | Path,
                            allow_past_end: bool) -> None:
    """Every predicted frame lies in its video and every score is finite."""
    num_frames = {v.video: v.num_frames for v in truth}
    for pred in preds:
        end = num_frames[pred.video]
        for index, event in enumerate(pred.events):
            where = f"{source}: video {pred.video!r}, event #{index}"
            if event.frame < 0 or (event.frame >= end and not allow_past_end):
                raise UserError(f"{where}: frame {event.frame} is outside [0, {end}); predictions must lie "
                                "inside the video (or pass --allow-events-past-end)")
            if not math.isfinite(event.score):
                raise UserError(f"{where}: score {event.score} is not a finite number")


def format_table(result: FrameMapResult, classes: Sequence[str]) -> str:
    width = max([len("mAP")] + [len(c) for c in classes])
    header = f"{'class':<{width}}" + "".join(f"{'δ=' + str(t):>9}" for t in result.tolerances)
    lines = [header, "-" * len(header)]
    for name in classes:
        cells = []
        for tol in result.tolerances:
            ap = result.per_class[tol][name]
            cells.append(f"{'-' if ap is None else f'{100 * ap:.2f}':>9}")
        lines.append(f"{name:<{width}}" + "".join(cells))
    lines.append("-" * len(header))
    lines.append(f"{'mAP':<{width}}" + "".join(f"{100 * result.map[t]:>9.2f}" for t in result.tolerances))
    selection = result.selection_map
    if selection is not None:
        lines.append(f"mean mAP over δ in {{1, 2, 4}} (model selection): {100 * selection:.2f}")
    return "\n".join(lines)


@dataclass
class SoccerNetEvaluation:
    """SoccerNet average-mAP of a folder of ``results_spotting.json`` files."""

    result: AverageMapResult
    games: int  # games scored
    without_predictions: int  # of those, games with no results_spotting.json (they count as empty)
    classes: list[str]  # the classes averaged (SoccerNet-v2's 17)
    ignored_labels: dict[str, int]  # label classes that are not among them: events of each, not scored
    ignored_predictions: dict[str, int]  # predicted classes that are not among them: predictions of each


def soccernet_metrics() -> list[str]:
    """The names of SoccerNet's metrics: tight, loose, at1..at5."""
    from uglspot.metrics.soccernet import METRIC_TOLERANCES_S

    return list(METRIC_TOLERANCES_S)


def evaluate_soccernet_games(labels_dir: str | Path, pred_dir: str | Path, metric: str = "tight",
                             split_list: str | Path | None = None) -> SoccerNetEvaluation:
    """SoccerNet's average-mAP (``metric``: tight, loose, at1..at5) of
    ``<game>/results_spotting.json`` under ``pred_dir`` against
    ``<game>/Labels-v2.json`` under ``labels_dir``, over the games of
    ``split_list`` (default: every labelled game)."""
    from uglspot.data.soccernet import LABELS_FILE, read_labels_dir, read_predictions_dir
    from uglspot.metrics.soccernet import SOCCERNET_V2_CLASSES, average_map

    labels_dir, pred_dir = Path(labels_dir), Path(pred_dir)
    labels = read_labels_dir(labels_dir)
    if not labels:
        raise UserError(f"{labels_dir}: no {LABELS_FILE} found at any depth; pass the SoccerNet labels folder")
    predictions = read_predictions_dir(pred_dir)
    known = {item.game for item in labels}
    unknown = sorted(p.game for p in predictions if p.game not in known)
    if unknown:
        raise UserError(f"{pred_dir}: {len(unknown)} game(s) have predictions but no {LABELS_FILE} under "
                        f"{labels_dir}, first {unknown[0]!r}; check that both folders hold the same split")
    if split_list is not None:
        wanted = read_split_list(Path(split_list))
        missing = [g for g in wanted if g not in known]
        if missing:
            raise UserError(f"{split_list}: {len(missing)} listed game(s) have no {LABELS_FILE} under "
                            f"{labels_dir}, first {missing[0]!r}")
        chosen = set(wanted)
        labels = [item for item in labels if item.game in chosen]
        predictions = [item for item in predictions if item.game in chosen]
    with_predictions = {p.game for p in predictions}
    without = sum(1 for item in labels if item.game not in with_predictions)
    classes = list(SOCCERNET_V2_CLASSES)
    return SoccerNetEvaluation(average_map(labels, predictions, metric, classes), len(labels), without, classes,
                               _outside(classes, (a.label for item in labels for a in item.annotations)),
                               _outside(classes, (label for item in predictions for label in item.label)))


def _outside(classes: Sequence[str], labels: Iterable[str]) -> dict[str, int]:
    """How often each label not in ``classes`` occurs, most frequent first."""
    from collections import Counter

    known = set(classes)
    return dict(Counter(label for label in labels if label not in known).most_common())


def read_split_list(path: Path) -> list[str]:
    from uglspot.io import read_json

    if path.suffix == ".json":
        games = _flatten(read_json(path), "", path)
    else:
        from uglspot.io import read_text

        games = [line.strip() for line in read_text(path, "split list").splitlines()]
    games = [g.strip("/") for g in games if g.strip()]
    if not games:
        raise UserError(f"{path}: the split list names no game")
    return games


def _flatten(node: object, prefix: str, path: Path) -> list[str]:
    """Game paths of a JSON list of paths, or of SoccerNet's nested
    ``{league: {season: [game, ...]}}``."""
    if isinstance(node, str):
        return [prefix + node]
    if isinstance(node, list):
        return [game for item in node for game in _flatten(item, prefix, path)]
    if isinstance(node, dict):
        return [game for key, item in node.items() for game in _flatten(item, f"{prefix}{key}/", path)]
    raise UserError(f"{path}: expected a JSON list of game paths like 'league/season/game', or "
                    "{league: {season: [game, ...]}} as in SoccerNet's game lists")
