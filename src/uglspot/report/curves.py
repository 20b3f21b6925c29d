"""Precision-recall curves for the report.

A curve is drawn from the very matching behind the report's AP table and
``uglspot eval frames`` (``uglspot.metrics.spotting.match_frames``), so the
area a curve shows is the AP the table prints, duplicated ground truth and
videos without events included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from uglspot.data.labels import Video, VideoPredictions
from uglspot.metrics.spotting import FrameMatches, average_precision, best_f1_threshold, match_frames


@dataclass
class PRCurve:
    hits: np.ndarray  # (P,) bool, whether each prediction of the class is a true positive, in rank order
    num_truth: int  # ground-truth events of the class, duplicates included

    @property
    def precision(self) -> np.ndarray:
        """(P,) precision after each prediction, in rank order."""
        return np.cumsum(self.hits) / np.arange(1, len(self.hits) + 1)

    @property
    def recall(self) -> np.ndarray:
        """(P,) recall after each prediction."""
        return np.cumsum(self.hits) / max(self.num_truth, 1)

    @property
    def average_precision(self) -> float | None:
        """The table's AP: the same function over the same matching."""
        return average_precision(self.hits, self.num_truth)


def pr_curves(matches: FrameMatches) -> dict[tuple[str, int], PRCurve]:
    """A curve per (class, tolerance) of one matching."""
    return {(name, tol): PRCurve(matches.hits[tol][name], matches.num_truth[name])
            for tol in matches.tolerances for name in matches.classes}


def pr_curve(truth: Sequence[Video], preds: Sequence[VideoPredictions], label: str, tolerance: int) -> PRCurve:
    """The curve of class ``label`` at one tolerance (classes are matched
    independently, so the other classes' events play no part)."""
    truth = [replace(v, events=[e for e in v.events if e.label == label]) for v in truth]
    preds = [VideoPredictions(p.video, [e for e in p.events if e.label == label]) for p in preds]
    if not any(v.events for v in truth):
        return PRCurve(np.zeros(sum(len(p.events) for p in preds), dtype=bool), 0)
    return pr_curves(match_frames(truth, preds, [label], (tolerance,)))[(label, tolerance)]


def spotting_threshold(curve: PRCurve, scores: np.ndarray, most: float = 2.0) -> float:
    """The lowest score a timeline shows for one class: where ``curve``'s
    F1 is best among the cut-offs that keep at most ``most`` times as many
    predictions as there are true events (more than that is no spotting
    and no readable picture). ``scores`` are the curve's predictions'
    scores; a cut-off falls between distinct scores only. Without ground
    truth of the class, the top score."""
    return best_f1_threshold(curve.hits, curve.num_truth, scores, most)
