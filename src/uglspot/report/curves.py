"""Precision-recall curves for the report (pure numpy).

The AP numbers in the report come from ``uglspot.metrics.spotting.frame_map``;
this module draws the curve behind them with the same matching rule
(E2E-Spot's): predictions of a class in descending score (ties keep input
order), each matched to the nearest not-yet-matched ground truth of its
class in the same video within the tolerance (the earlier one when two are
equally near).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from uglspot.data.labels import Video, VideoPredictions


@dataclass
class PRCurve:
    precision: np.ndarray  # (P,) precision after each prediction, in rank order
    recall: np.ndarray  # (P,) recall after each prediction
    num_truth: int

    @property
    def average_precision(self) -> float | None:
        """Precision at each true positive, made monotone from the right,
        summed and divided by the number of ground truths."""
        if self.num_truth == 0:
            return None
        if self.recall.size == 0:
            return 0.0
        hits = np.diff(np.concatenate([[0.0], self.recall])) > 0
        at_hits = self.precision[hits]
        monotone = np.maximum.accumulate(at_hits[::-1])[::-1]
        return float(monotone.sum() / self.num_truth)


def pr_curve(truth: Sequence[Video], preds: Sequence[VideoPredictions], label: str, tolerance: int) -> PRCurve:
    gt: dict[str, list[int]] = {}
    for video in truth:
        frames = sorted({e.frame for e in video.events if e.label == label})
        if frames:
            gt[video.video] = frames
    num_truth = sum(len(f) for f in gt.values())
    scored = [(e.score if e.score is not None else 0.0, order, p.video, e.frame)
              for order, (p, e) in enumerate((p, e) for p in preds for e in p.events if e.label == label)]
    scored.sort(key=lambda s: (-s[0], s[1]))
    taken: dict[str, np.ndarray] = {v: np.zeros(len(f), dtype=bool) for v, f in gt.items()}
    tp = np.zeros(len(scored), dtype=bool)
    for rank, (_, _, video, frame) in enumerate(scored):
        frames = gt.get(video)
        if frames is None:
            continue
        distance = np.abs(np.asarray(frames) - frame).astype(np.float64)
        distance[taken[video]] = np.inf
        best = int(np.argmin(distance))  # first minimum: the earlier of two equally near
        if distance[best] <= tolerance:
            taken[video][best] = True
            tp[rank] = True
    hits = np.cumsum(tp)
    count = np.arange(1, len(scored) + 1)
    precision = hits / np.maximum(count, 1)
    recall = hits / max(num_truth, 1)
    return PRCurve(precision.astype(np.float64), recall.astype(np.float64), num_truth)
