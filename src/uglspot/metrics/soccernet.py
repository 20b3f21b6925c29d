"""SoccerNet average-mAP with the numbers of the official evaluator.

``SoccerNet.Evaluation.ActionSpotting.evaluate`` (package SoccerNet 0.2.0)
defines the metric through its code; this module reproduces every rule of it
on sparse arrays instead of one dense (14400, 17) array per half:

- Time is cut into slots of 1/``framerate`` s (2 fps): frame =
  ``int(framerate * position_ms / 1000)`` (gameTime minutes and seconds when a
  label has no position), capped at the last slot of a 120-minute half. Each
  (game, half, class, slot) holds one value: a later ground truth or
  prediction in the file overwrites an earlier one, whatever its score.
  Predictions whose final slot score is negative (or NaN) are dropped;
  labels and halves outside the class list and halves 1-2 are ignored.
- For a tolerance of δ seconds (``delta = δ * framerate`` slots), ground
  truths are visited in time order per (half, class); each takes the
  highest-scoring unused prediction with ``|Δslot| <= delta / 2`` (the
  earliest on a tie). Those predictions are true positives at every
  threshold: matching does not depend on the threshold.
- 200 thresholds ``linspace(0, 1, 200)``; at each, precision and recall of
  the predictions scoring ``>= threshold`` (0 where undefined); 11-point
  interpolated AP (max precision at recall ``>= 0, 0.1, ..., 1``); mAP is
  the mean over all classes, also those without ground truth.
- Visible / unshown: a prediction belongs to the visible (unshown) curve
  when the ground truth nearest to it in its (half, class) -- by the
  midpoints between consecutive ground truths -- is shown (not shown); in a
  (half, class) without ground truth it belongs to the unshown curve. Its
  true-positive flag is the one of the overall matching.
- average-mAP is the trapezoid mean of mAP over the tolerances (tight
  1..5 s, loose 5..60 s step 5); the unshown average is multiplied by 17/13.
  A single tolerance (at1..at5) returns that mAP as is (no 17/13).

Instead of the official per-ground-truth scan over all predictions and a pass
over the predictions per threshold, the greedy matching runs in rounds over
chains of ground truths whose windows overlap (round k handles the k-th
ground truth of every chain at once), and the counts at the 200 thresholds
come from one histogram per class over "how many thresholds this score
reaches" and a cumulative sum: exact integer counts, no sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from uglspot.data.soccernet import GameLabels, GamePredictions
from uglspot.errors import UserError

SOCCERNET_V2_CLASSES: tuple[str, ...] = (
    "Penalty", "Kick-off", "Goal", "Substitution", "Offside", "Shots on target", "Shots off target",
    "Clearance", "Ball out of play", "Throw-in", "Foul", "Indirect free-kick", "Direct free-kick",
    "Corner", "Yellow card", "Red card", "Yellow->red card",
)

METRIC_TOLERANCES_S: dict[str, tuple[int, ...]] = {
    "tight": (1, 2, 3, 4, 5),
    "loose": tuple(range(5, 65, 5)),
    "at1": (1,), "at2": (2,), "at3": (3,), "at4": (4,), "at5": (5,),
}

HALF_LIMIT_S = 120 * 60  # slots past this are folded onto the last one
NUM_THRESHOLDS = 200
HALVES = (1, 2)


@dataclass(frozen=True)
class AverageMapResult:
    metric: str
    a_mAP: float
    a_mAP_per_class: dict[str, float]
    a_mAP_visible: float
    a_mAP_per_class_visible: dict[str, float]
    a_mAP_unshown: float
    a_mAP_per_class_unshown: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a_mAP": self.a_mAP, "a_mAP_per_class": dict(self.a_mAP_per_class),
            "a_mAP_visible": self.a_mAP_visible, "a_mAP_per_class_visible": dict(self.a_mAP_per_class_visible),
            "a_mAP_unshown": self.a_mAP_unshown, "a_mAP_per_class_unshown": dict(self.a_mAP_per_class_unshown),
        }


@dataclass(frozen=True)
class SlotTable:
    """Sorted unique slot keys ``((pair) * length + slot)`` with their value,
    where pair = ``(game * 2 + half - 1) * num_classes + class``."""

    keys: np.ndarray  # (S,) int64, ascending
    values: np.ndarray  # (S,) float64: +1/-1 visibility for labels, the score for predictions


def _last_write_wins(keys: np.ndarray, values: np.ndarray) -> SlotTable:
    """Keep, per key, the value written last (file order), sorted by key."""
    order = np.argsort(keys, kind="stable")  # equal keys stay in file order
    sorted_keys = keys[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    return SlotTable(keys=sorted_keys[last].astype(np.int64), values=values[order[last]].astype(np.float64))


def _slot_of(position_ms: np.ndarray, framerate: int) -> np.ndarray:
    return np.trunc(framerate * (position_ms / 1000)).astype(np.int64)


def label_slots(
    labels: Sequence[GameLabels], classes: Sequence[str], framerate: int = 2
) -> SlotTable:
    class_index = {name: i for i, name in enumerate(classes)}
    length = HALF_LIMIT_S * framerate
    kept = [(game, a) for game, item in enumerate(labels) for a in item.annotations
            if a.half in HALVES and a.label in class_index]
    if not kept:
        return SlotTable(np.zeros(0, np.int64), np.zeros(0, np.float64))
    game = np.fromiter((g for g, _ in kept), np.int64, len(kept))
    half = np.fromiter((a.half for _, a in kept), np.int64, len(kept))
    cls = np.fromiter((class_index[a.label] for _, a in kept), np.int64, len(kept))
    position = np.fromiter((-1 if a.position is None else a.position for _, a in kept), np.int64, len(kept))
    clock_s = np.fromiter((a.clock_s for _, a in kept), np.int64, len(kept))
    value = np.fromiter((-1.0 if a.visibility == "not shown" else 1.0 for _, a in kept), np.float64, len(kept))
    slot = np.where(position >= 0, _slot_of(position.astype(np.float64), framerate), framerate * clock_s)
    slot = np.minimum(slot, length - 1)
    keys = ((game * 2 + half - 1) * len(classes) + cls) * length + slot
    return _last_write_wins(keys.astype(np.int64), value)


def prediction_slots(
    predictions: Iterable[GamePredictions], games: Mapping[str, int], classes: Sequence[str], framerate: int = 2
) -> SlotTable:
    class_index = {name: i for i, name in enumerate(classes)}
    length = HALF_LIMIT_S * framerate
    game, half, cls, position, score = [], [], [], [], []
    for item in predictions:
        if item.game not in games:
            raise UserError(f"predictions for game {item.game!r}, which has no labels; "
                            "check that labels and predictions come from the same split")
        if not len(item):
            continue
        classes_of = np.fromiter(map(class_index.get, item.label, repeat(-1)), np.int64, len(item))
        kept = (classes_of >= 0) & ((item.half == 1) | (item.half == 2))
        game.append(np.full(int(kept.sum()), games[item.game], dtype=np.int64))
        half.append(item.half[kept])
        cls.append(classes_of[kept])
        position.append(item.position[kept])
        score.append(item.confidence[kept])
    if not game or not sum(len(g) for g in game):
        return SlotTable(np.zeros(0, np.int64), np.zeros(0, np.float64))
    game, half, cls, position, score = (np.concatenate(col) for col in (game, half, cls, position, score))
    slot = np.minimum(_slot_of(position.astype(np.float64), framerate), length - 1)
    keys = ((game * 2 + half - 1) * len(classes) + cls) * length + slot
    table = _last_write_wins(keys.astype(np.int64), score.astype(np.float64))
    keep = table.values >= 0  # also drops NaN
    return SlotTable(table.keys[keep], table.values[keep])


def greedy_match(gt_keys: np.ndarray, pred_keys: np.ndarray, pred_scores: np.ndarray,
                 half_window: int, length: int) -> np.ndarray:
    """True-positive flag per prediction: ground truths in key order each take
    the highest-scoring unused prediction of their (half, class) within
    ``half_window`` slots, the earliest on a tie.

    Ground truths whose candidate ranges overlap form a chain and must be
    served in order; different chains are independent, so round k serves the
    k-th ground truth of every chain in one vectorised step.
    """
    used = np.zeros(len(pred_keys), dtype=bool)
    if len(gt_keys) == 0 or len(pred_keys) == 0:
        return used
    pair_start = gt_keys - gt_keys % length
    lo = np.searchsorted(pred_keys, np.maximum(gt_keys - half_window, pair_start), side="left")
    hi = np.searchsorted(pred_keys, np.minimum(gt_keys + half_window, pair_start + length - 1), side="right")
    has = hi > lo
    lo, hi = lo[has], hi[has]
    if len(lo) == 0:
        return used
    new_chain = np.ones(len(lo), dtype=bool)
    new_chain[1:] = lo[1:] >= hi[:-1]  # lo and hi are non-decreasing, so no earlier range reaches lo
    chain_first = np.flatnonzero(new_chain)
    rank = np.arange(len(lo)) - chain_first[np.cumsum(new_chain) - 1]
    by_round = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))
    start = 0
    for stop in bounds:
        members = by_round[start:stop]
        start = stop
        g_lo, g_hi = lo[members], hi[members]
        width = int((g_hi - g_lo).max())
        candidates = g_lo[:, None] + np.arange(width)  # (n, W) prediction indices
        valid = candidates < g_hi[:, None]
        candidates = np.minimum(candidates, len(pred_keys) - 1)
        valid &= ~used[candidates]
        scores = np.where(valid, pred_scores[candidates], -np.inf)
        best = scores.argmax(axis=1)  # first maximum: the earliest slot
        rows = np.arange(len(members))
        taken = valid[rows, best]
        used[candidates[rows, best][taken]] = True
    return used


def closest_visibility(gt: SlotTable, pred_keys: np.ndarray, length: int) -> np.ndarray:
    """+1/-1 visibility of the ground truth whose midpoint-bounded segment holds
    each prediction; -1 where the (half, class) has no ground truth."""
    if len(gt.keys) == 0:
        return -np.ones(len(pred_keys))
    pair = gt.keys // length
    slot = gt.keys % length
    same_pair_before = np.zeros(len(slot), dtype=bool)
    same_pair_before[1:] = pair[1:] == pair[:-1]
    previous = np.concatenate([[0], slot[:-1]])
    starts = pair * length + np.where(same_pair_before, (previous + slot) // 2, 0)
    segment = np.searchsorted(starts, pred_keys, side="right") - 1
    inside = segment >= 0
    segment = np.maximum(segment, 0)
    inside &= pair[segment] == pred_keys // length
    return np.where(inside, gt.values[segment], -1.0)


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """11-point AP per class from (K, thresholds) curves, summed in the same
    order as the official code so the floats agree to the last bit."""
    ap = np.zeros(precision.shape[0])
    for level in np.arange(11) / 10:
        ap += np.where(recall >= level, precision, 0.0).max(axis=1)
    return ap / 11


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(numerator / denominator)


def _trapezoid(values: list[Any]) -> Any:
    if len(values) == 1:
        return values[0]
    integral = 0.0
    for left, right in zip(values[:-1], values[1:]):
        integral += (left + right) / 2
    return integral / (len(values) - 1)


def average_map(
    labels: Sequence[GameLabels],
    predictions: Iterable[GamePredictions],
    metric: str = "tight",
    classes: Sequence[str] = SOCCERNET_V2_CLASSES,
    framerate: int = 2,
) -> AverageMapResult:
    """SoccerNet average-mAP of ``predictions`` against ``labels`` (one record
    per game; a game without predictions has none). Predictions for a game
    missing from ``labels`` are a UserError."""
    if metric not in METRIC_TOLERANCES_S:
        raise UserError(f"unknown SoccerNet metric {metric!r}; choose one of {', '.join(METRIC_TOLERANCES_S)}")
    games = {item.game: index for index, item in enumerate(labels)}
    if len(games) != len(labels):
        raise UserError("the same game appears twice in the labels; each game folder must be read once")
    num_classes, length = len(classes), HALF_LIMIT_S * framerate
    gt = label_slots(labels, classes, framerate)
    pred = prediction_slots(predictions, games, classes, framerate)

    gt_class = (gt.keys // length) % num_classes
    shown = gt.values > 0
    n_visible = np.bincount(gt_class[shown], minlength=num_classes)
    n_unshown = np.bincount(gt_class[~shown], minlength=num_classes)
    n_all = n_visible + n_unshown

    closest = closest_visibility(gt, pred.keys, length)
    pred_class = (pred.keys // length) % num_classes
    thresholds = np.linspace(0, 1, NUM_THRESHOLDS)
    # A prediction counts at threshold j exactly when j < (number of thresholds <= its score):
    # one histogram per class over that number gives the counts at all 200 thresholds, no sort.
    cell = pred_class * (NUM_THRESHOLDS + 1) + np.searchsorted(thresholds, pred.values, side="right")

    def counts(weight: np.ndarray) -> np.ndarray:
        """(K, thresholds): how many predictions with ``weight`` score >= each threshold."""
        histogram = np.bincount(cell[weight], minlength=num_classes * (NUM_THRESHOLDS + 1))
        histogram = histogram.reshape(num_classes, NUM_THRESHOLDS + 1)
        at_least = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1]  # [c, b]: predictions in cells >= b
        return at_least[:, 1:].astype(np.float64)

    visible, unshown = closest > 0.5, closest < -0.5
    kept = {"all": counts(np.ones(len(cell), dtype=bool)), "visible": counts(visible), "unshown": counts(unshown)}
    totals = {"all": n_all, "visible": n_visible, "unshown": n_unshown}

    maps: dict[str, list[Any]] = {name: [] for name in kept}
    per_class: dict[str, list[np.ndarray]] = {name: [] for name in kept}
    for tolerance_s in METRIC_TOLERANCES_S[metric]:
        delta = tolerance_s * framerate
        tp = greedy_match(gt.keys, pred.keys, pred.values, int(np.floor(delta / 2)), length)
        hits = {"all": counts(tp), "visible": counts(tp & visible), "unshown": counts(tp & unshown)}
        for name in kept:
            precision = _ratio(hits[name], kept[name])
            recall = _ratio(hits[name], totals[name][:, None])
            ap = _interpolated_ap(precision, recall)
            per_class[name].append(ap)
            maps[name].append(np.mean(ap))

    single = len(METRIC_TOLERANCES_S[metric]) == 1
    averages = {name: _trapezoid(maps[name]) for name in maps}
    if not single:
        averages["unshown"] = averages["unshown"] * 17 / 13  # the official fixed factor, whatever the classes
    class_averages = {name: [_trapezoid([ap[c] for ap in per_class[name]]) for c in range(num_classes)]
                      for name in per_class}
    named = {name: {cls: float(value) for cls, value in zip(classes, class_averages[name])} for name in class_averages}
    return AverageMapResult(
        metric=metric,
        a_mAP=float(averages["all"]), a_mAP_per_class=named["all"],
        a_mAP_visible=float(averages["visible"]), a_mAP_per_class_visible=named["visible"],
        a_mAP_unshown=float(averages["unshown"]), a_mAP_per_class_unshown=named["unshown"],
    )
