"""mAP at frame tolerances, with E2E-Spot's definition (FineDiving, FineGym,
Tennis, Figure Skating).

For each class, the predictions of that class over all videos are ranked by
score, highest first; equal scores keep their input order (videos in the
order given, events in file order). Walking down that ranking, each
prediction is matched to the nearest ground truth of its class in its video
that no earlier prediction took. When two ground truths are equally near, the
one earlier in the ground-truth file wins. The prediction is a true positive,
and takes that ground truth, if ``|Δframe| <= δ``; otherwise it is a false
positive and takes nothing. The precision ``TP / rank`` is recorded at every
true positive; those values are made monotone from the right (each becomes the
maximum of itself and all later ones), summed, and divided by the number of
ground-truth events of the class. mAP is the mean over the classes that have
ground truth. Model selection uses the mean of mAP at δ = 1, 2 and 4.

One quirk is kept so that numbers equal E2E-Spot's: ground-truth events of
the same class at the same frame of the same video are one target. The first
prediction that takes it recalls all copies, yet every copy counts in the
denominator (SoccerNet-v2's converted labels have 24 such duplicates in test).

The matching is sequential by nature (who takes a ground truth depends on
every higher-ranked prediction), so it runs as a sorted search: ground truths
sorted by (video, class, frame), every prediction's insertion point found with
one ``np.searchsorted``, predictions with no ground truth within δ at all
discarded as false positives in one vectorised step, and the rest walked in
rank order with "next unmatched" pointers on both sides (union-find with path
halving), so each step costs near O(1) instead of a scan over ground truths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from uglspot.data.labels import Video, VideoPredictions

DEFAULT_TOLERANCES: tuple[int, ...] = (0, 1, 2, 4)
SELECTION_TOLERANCES: tuple[int, ...] = (1, 2, 4)


@dataclass
class FrameMapResult:
    """mAP per tolerance and AP per class per tolerance, as fractions in [0, 1].

    A class without ground truth has AP ``None`` and is left out of the mean.
    """

    tolerances: tuple[int, ...]
    map: dict[int, float]
    per_class: dict[int, dict[str, float | None]]

    @property
    def selection_map(self) -> float | None:
        """Mean mAP over δ = 1, 2, 4 (E2E-Spot's model selection), or None when
        one of those tolerances was not evaluated."""
        if not all(t in self.map for t in SELECTION_TOLERANCES):
            return None
        return float(np.mean([self.map[t] for t in SELECTION_TOLERANCES]))

    def to_json(self) -> dict[str, Any]:
        return {
            "tolerances": list(self.tolerances),
            "mAP": {str(t): self.map[t] for t in self.tolerances},
            "per_class": {str(t): dict(self.per_class[t]) for t in self.tolerances},
        }


def check_tolerances(tolerances: Iterable[int]) -> tuple[int, ...]:
    """Tolerances as a tuple of distinct non-negative ints, in the order given:
    the one rule of the metric's tolerances (:func:`parse_tolerances` reads them from text)."""
    out = tuple(tolerances)
    if not out:
        raise ValueError("no tolerances given; pass at least one, e.g. 0,1,2,4")
    for tol in out:
        if isinstance(tol, bool) or not isinstance(tol, (int, np.integer)) or tol < 0:
            raise ValueError(f"tolerance {tol!r} is not a non-negative whole number of frames")
    if len(set(out)) != len(out):
        raise ValueError(f"a value is repeated in {[int(t) for t in out]}; list each tolerance once")
    return tuple(int(t) for t in out)


def parse_tolerances(text: str) -> tuple[int, ...]:
    """Frame tolerances written as ``0,1,2,4``: whole numbers, comma-separated,
    checked by :func:`check_tolerances`. ValueError names the part that is wrong."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not (part.isascii() and part.isdigit()):
            raise ValueError(f"{part!r} is not a non-negative whole number of frames; write e.g. 0,1,2,4")
        values.append(int(part))
    return check_tolerances(values)


@dataclass
class _GroundTruth:
    """Ground truth of one evaluation, sorted by (video, class, frame), one
    entry per distinct (video, class, frame)."""

    group: np.ndarray  # (G,) int64 video_index * K + class_index
    frame: np.ndarray  # (G,) int64
    first: np.ndarray  # (G,) int64 index of the first such event in its video's event list
    count: np.ndarray  # (K,) int64 events per class, duplicates included


def _ground_truth(truth: Sequence[Video], class_index: dict[str, int]) -> _GroundTruth:
    num_classes = len(class_index)
    groups, frames, firsts = [], [], []
    for video_index, video in enumerate(truth):
        for event_index, event in enumerate(video.events):
            label = class_index.get(event.label)
            if label is None:
                raise ValueError(f"ground truth: video {video.video!r}, event #{event_index}: "
                                 f"label {event.label!r} is not one of the classes")
            groups.append(video_index * num_classes + label)
            frames.append(event.frame)
            firsts.append(event_index)
    group = np.asarray(groups, dtype=np.int64)
    frame = np.asarray(frames, dtype=np.int64)
    first = np.asarray(firsts, dtype=np.int64)
    count = np.bincount(group % num_classes, minlength=num_classes) if len(group) else np.zeros(num_classes, np.int64)
    order = np.lexsort((first, frame, group))  # by group, then frame, then file order
    group, frame, first = group[order], frame[order], first[order]
    keep = np.ones(len(group), dtype=bool)
    keep[1:] = (group[1:] != group[:-1]) | (frame[1:] != frame[:-1])  # first copy of each (group, frame)
    return _GroundTruth(group[keep], frame[keep], first[keep], count.astype(np.int64))


@dataclass
class _Predictions:
    group: np.ndarray  # (P,) int64 video_index * K + class_index
    label: np.ndarray  # (P,) int64 class index
    frame: np.ndarray  # (P,) int64
    score: np.ndarray  # (P,) float64


def _predictions(preds: Sequence[VideoPredictions], video_index: dict[str, int],
                 class_index: dict[str, int]) -> _Predictions:
    num_classes = len(class_index)
    groups, labels, frames, scores = [], [], [], []
    for pred in preds:
        index = video_index.get(pred.video)
        if index is None:
            raise ValueError(f"predictions: video {pred.video!r} is not in the ground truth")
        for event_index, event in enumerate(pred.events):
            label = class_index.get(event.label)
            if label is None:
                raise ValueError(f"predictions: video {pred.video!r}, event #{event_index}: "
                                 f"label {event.label!r} is not one of the classes")
            if event.score is None:
                raise ValueError(f"predictions: video {pred.video!r}, event #{event_index}: no score")
            groups.append(index * num_classes + label)
            labels.append(label)
            frames.append(event.frame)
            scores.append(event.score)
    score = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(score)):
        raise ValueError("predictions: a score is NaN or infinite; every score must be a finite number")
    return _Predictions(np.asarray(groups, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                        np.asarray(frames, dtype=np.int64), score)


def _greedy_match(candidates: np.ndarray, pos: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  pred_frame: np.ndarray, gt: _GroundTruth, tolerance: int) -> np.ndarray:
    """True-positive flags of ``candidates`` (prediction indices in rank order).

    ``pos`` is each prediction's insertion point among the sorted ground
    truths, ``[lo, hi)`` the range of its (video, class) group. ``right[i]``
    points toward the first unmatched ground truth at or after ``i``;
    ``left[i + 1]`` toward the last unmatched one at or before ``i`` (shifted by
    one so that index 0 is the sentinel "none before").
    """
    num_gt = len(gt.frame)
    right = list(range(num_gt + 1))
    left = list(range(num_gt + 1))
    gt_frame = gt.frame.tolist()
    gt_first = gt.first.tolist()
    hits = []
    for start, lo_g, hi_g, frame in zip(pos[candidates].tolist(), lo[candidates].tolist(),
                                        hi[candidates].tolist(), pred_frame[candidates].tolist()):
        after = start
        while right[after] != after:
            right[after] = right[right[after]]
            after = right[after]
        shifted = start
        while left[shifted] != shifted:
            left[shifted] = left[left[shifted]]
            shifted = left[shifted]
        before = shifted - 1
        best, dist = -1, 0
        if after < hi_g:
            best, dist = after, gt_frame[after] - frame
        if before >= lo_g:
            dist_before = frame - gt_frame[before]
            if best < 0 or dist_before < dist or (dist_before == dist and gt_first[before] < gt_first[best]):
                best, dist = before, dist_before
        if best >= 0 and dist <= tolerance:
            right[best] = best + 1
            left[best + 1] = best
            hits.append(True)
        else:
            hits.append(False)
    return np.asarray(hits, dtype=bool)


@dataclass
class FrameMatches:
    """The outcome of E2E-Spot's matching (module docstring) at each
    tolerance: for every class, whether each of its predictions, in rank
    order (score descending, ties in input order), is a true positive."""

    classes: list[str]
    tolerances: tuple[int, ...]
    num_truth: dict[str, int]  # ground-truth events per class, duplicates included
    hits: dict[int, dict[str, np.ndarray]]  # tolerance -> class -> (P_c,) bool, in rank order


def average_precision(hits: np.ndarray, num_truth: int) -> float | None:
    """Precision at each true positive of a ranking, made monotone from the
    right, summed in rank order and divided by ``num_truth``; None without
    ground truth."""
    if num_truth == 0:
        return None
    rank = np.flatnonzero(hits) + 1
    precision = np.arange(1, len(rank) + 1) / rank
    monotone = np.maximum.accumulate(precision[::-1])[::-1]
    return sum(monotone.tolist()) / num_truth  # summed in rank order, as E2E-Spot does


def best_f1_threshold(hits: np.ndarray, num_truth: int, scores: np.ndarray, most: float | None = None) -> float:
    """The score cut-off with the best F1 over one class's ranked predictions:
    ``hits`` (P,) whether each is a true positive, in rank order (score
    descending, as :func:`match_frames` gives them), ``scores`` their scores.
    A cut-off falls between distinct scores only; with ``most``, only those
    keeping at most ``most`` times as many predictions as true events count.
    Without predictions, infinity; when no cut-off counts, the top score."""
    ranked = np.sort(np.asarray(scores, dtype=np.float64))[::-1]  # (P,) rank order
    if ranked.size == 0:
        return float("inf")
    kept = np.arange(1, ranked.size + 1)
    f1 = 2 * np.cumsum(hits) / (kept + num_truth)
    allowed = np.append(ranked[1:] != ranked[:-1], True)  # last prediction of each run of equal scores
    if most is not None:
        allowed &= kept <= most * num_truth
    if not allowed.any():
        return float(ranked[0])
    return float(ranked[int(np.argmax(np.where(allowed, f1, -1.0)))])


def match_frames(truth: Sequence[Video], preds: Sequence[VideoPredictions], classes: Sequence[str],
                 tolerances: Sequence[int] = DEFAULT_TOLERANCES) -> FrameMatches:
    """Match ``preds`` to ``truth`` at each tolerance (module docstring).

    Raises ValueError for a prediction of a video not in ``truth``, a label
    not in ``classes``, a non-finite score, bad tolerances, or ground truth
    without any event (mAP would be undefined).
    """
    tols = check_tolerances(tolerances)
    class_index = {name: i for i, name in enumerate(classes)}
    if len(class_index) != len(classes):
        raise ValueError("classes repeat a name; list each class once")
    video_index: dict[str, int] = {}
    for index, video in enumerate(truth):
        if video.video in video_index:
            raise ValueError(f"ground truth: duplicate video id {video.video!r}")
        video_index[video.video] = index
    gt = _ground_truth(truth, class_index)
    if not gt.count.any():
        raise ValueError("ground truth has no events, so mAP is undefined")
    pr = _predictions(preds, video_index, class_index)

    # Insertion point of every prediction among the sorted ground truths, on
    # one int64 key (group, frame); frames may be anywhere, so shift them.
    low = min(int(gt.frame.min()), int(pr.frame.min()) if len(pr.frame) else 0)
    high = max(int(gt.frame.max()), int(pr.frame.max()) if len(pr.frame) else 0)
    stride = high - low + 1
    if (len(truth) * len(classes) + 1) * stride >= 2 ** 62:
        raise ValueError(f"frame numbers span {stride} frames, too many to evaluate")
    gt_key = gt.group * stride + (gt.frame - low)
    pred_key = pr.group * stride + (pr.frame - low)
    pos = np.searchsorted(gt_key, pred_key, side="left")
    lo = np.searchsorted(gt.group, pr.group, side="left")
    hi = np.searchsorted(gt.group, pr.group, side="right")

    # Distance to the nearest ground truth before any matching: a prediction
    # farther than δ from every ground truth is a false positive whatever happens.
    nearest = np.full(len(pos), np.iinfo(np.int64).max, dtype=np.int64)
    has_right = pos < hi
    nearest[has_right] = gt.frame[pos[has_right]] - pr.frame[has_right]
    has_left = pos - 1 >= lo
    left_dist = pr.frame[has_left] - gt.frame[pos[has_left] - 1]
    nearest[has_left] = np.minimum(nearest[has_left], left_dist)

    # Rank order. Within one (video, class) group only the relative order
    # matters, which a stable sort on score alone already gives.
    rank_order = np.argsort(-pr.score, kind="stable")
    # Per class: class, then score descending, then input order.
    class_order = np.lexsort((np.arange(len(pr.score)), -pr.score, pr.label))
    class_bounds = np.searchsorted(pr.label[class_order], np.arange(len(classes) + 1))

    hits: dict[int, dict[str, np.ndarray]] = {}
    for tol in tols:
        candidates = rank_order[nearest[rank_order] <= tol]
        is_tp = np.zeros(len(pos), dtype=bool)
        is_tp[candidates] = _greedy_match(candidates, pos, lo, hi, pr.frame, gt, tol)
        hits[tol] = {name: is_tp[class_order[class_bounds[c]:class_bounds[c + 1]]] for c, name in enumerate(classes)}
    return FrameMatches(classes=list(classes), tolerances=tols,
                        num_truth={name: int(gt.count[c]) for c, name in enumerate(classes)}, hits=hits)


def frame_map(truth: Sequence[Video], preds: Sequence[VideoPredictions], classes: Sequence[str],
              tolerances: Sequence[int] = DEFAULT_TOLERANCES) -> FrameMapResult:
    """mAP at each frame tolerance, E2E-Spot's definition (module docstring):
    the one scorer behind ``uglspot eval frames``, validation, ``predict``,
    ``demo`` and the report. Raises ValueError as :func:`match_frames`."""
    matches = match_frames(truth, preds, classes, tolerances)
    names_sorted = sorted(classes)  # E2E-Spot averages in name order
    result_map: dict[int, float] = {}
    per_class: dict[int, dict[str, float | None]] = {}
    for tol in matches.tolerances:
        aps = {name: average_precision(matches.hits[tol][name], matches.num_truth[name]) for name in classes}
        per_class[tol] = aps
        result_map[tol] = float(np.mean([aps[name] for name in names_sorted if aps[name] is not None]))
    return FrameMapResult(tolerances=matches.tolerances, map=result_map, per_class=per_class)
