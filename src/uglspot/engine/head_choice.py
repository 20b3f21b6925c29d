"""Each class's head chosen on held-out videos (``model.options.head_choice:
validation``, the UGL recipe).

A UGL model with a global head and a pick rule reads each event class from
one head: the global head, or the entity side (the fused head and the
entity classifier). Its gate learns that choice from training clips, where
the heads that see the entities fit a scene class about as well as the
global head does, and a pick decided by a few thousandths can then give a
scene class to the side that does worse on new matches (docs/demo.md, long
profile seed 1, Throw-in). Here the validation pass spots the validation
videos once per head, and a class keeps the gate's pick unless another
head's AP (mean over δ = 1, 2, 4 frames, the selection metric of
``frame_map``) beats it on at least 95 % of 1,000 bootstrap resamples of
the validation videos: a paired test over videos, the unit a new match
varies by, so that a lead made by one or two videos does not move a pick
(on few videos a plain argmax moved as many picks the wrong way as the
right one). A class without a true event in the validation videos keeps
the gate's pick, and so does every class when there is one validation
video only (a resample of one video is that video: no evidence of how a
new match varies). The predictions of the chosen heads are merged class by
class: they are exactly what spotting with the choice gives, since
scoring, NMS and thresholds treat each class apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from uglspot.data.labels import Video, VideoPredictions
from uglspot.errors import UserError
from uglspot.model.spotter import HEAD_NAMES, UGLSpotter

SELECTION_TOLERANCES = (1, 2, 4)
BOOTSTRAP_RESAMPLES = 1000
MIN_VIDEOS = 2  # on fewer, resampling says nothing about how a new match varies: the gate's picks stay
CONFIDENCE = 0.95  # the share of resamples on which a head must beat the gate's pick to replace it


def choose_heads(model: torch.nn.Module, videos: Sequence[Video], classes: Sequence[str],
                 predict: Callable[[str], list[VideoPredictions]]) -> tuple[list[VideoPredictions], dict[str, str] | None]:
    """Spot ``videos`` once per candidate head (``predict(what)`` with the
    model set to read that head for every class, ``what`` naming it), give each class its head
    (``head_per_class``, then ``model.choose_heads``) and return the merged
    predictions and the choice by class name, as
    ``InferenceSettings.head_choice`` keeps it. A model that does not choose
    on validation: ``predict("")`` and None."""
    if not (isinstance(model, UGLSpotter) and model.config.head_choice == "validation" and model.pick_candidates):
        return predict(""), None
    per_head: dict[int, list[VideoPredictions]] = {}
    for head in model.pick_candidates:
        model.choose_heads([head] * (len(classes) + 1))
        per_head[head] = predict(f", {model.head_label(head)}")
    choice = head_per_class(videos, per_head, classes, model.gate_choice())
    model.choose_heads(choice)
    return merge_by_class(per_head, choice, classes), {name: HEAD_NAMES[choice[i]] for i, name in enumerate(classes, 1)}


def head_per_class(videos: Sequence[Video], per_head: dict[int, list[VideoPredictions]], classes: Sequence[str],
                   gate: Sequence[int], resamples: int = BOOTSTRAP_RESAMPLES) -> list[int]:
    """Per column (K+1), the head a class reads: the gate's pick (``gate``)
    unless another head's AP beats it on at least ``CONFIDENCE`` of the
    bootstrap resamples of the videos (then the best such head by AP on all
    videos). A class without a true event in ``videos``, and every class
    when there are fewer than ``MIN_VIDEOS`` videos, keeps the gate's pick."""
    import numpy as np

    if len(videos) < MIN_VIDEOS:
        return list(gate)
    parts = {head: video_matches(videos, predictions, classes) for head, predictions in per_head.items()}
    rng = np.random.default_rng(0)  # the same draws for every head: a paired comparison
    draws = [np.arange(len(videos))] + [rng.integers(0, len(videos), len(videos)) for _ in range(resamples)]
    choice = list(gate)
    for index, name in enumerate(classes, 1):
        aps = {head: np.array([resampled_ap(parts[head], draw, name) for draw in draws]) for head in per_head}
        picked = aps[gate[index]]
        if np.isnan(picked[0]):
            continue  # no true event of the class: nothing to compare on
        better = [head for head, ap in aps.items() if np.mean(ap[1:] > picked[1:]) >= CONFIDENCE]
        if better:
            choice[index] = max(better, key=lambda head: (aps[head][0], -head))
    return choice


def video_matches(videos: Sequence[Video], predictions: Sequence[VideoPredictions],
                  classes: Sequence[str]) -> list[dict[str, tuple[Any, Any, int]]]:
    """Per video, per class: its predictions' scores (rank order), whether
    each is a true positive at each selection tolerance (T, P) and the true
    events. E2E-Spot's matching is per video and class, so the matches of
    any multiset of videos are these put together."""
    import numpy as np

    from uglspot.metrics.spotting import match_frames

    out = []
    for video, prediction in zip(videos, predictions):
        scores = {name: np.array(sorted((e.score for e in prediction.events if e.label == name), reverse=True))
                  for name in classes}
        if video.events:
            matched = match_frames([video], [prediction], classes, SELECTION_TOLERANCES)
            hits = {name: np.stack([matched.hits[t][name] for t in SELECTION_TOLERANCES]) for name in classes}
            truth = matched.num_truth
        else:  # every prediction is a false positive
            hits = {name: np.zeros((len(SELECTION_TOLERANCES), len(scores[name])), dtype=bool) for name in classes}
            truth = {name: 0 for name in classes}
        out.append({name: (scores[name], hits[name], truth[name]) for name in classes})
    return out


def resampled_ap(parts: list[dict[str, tuple[Any, Any, int]]], draw: Any, name: str) -> float:
    """Class ``name``'s AP, mean over the selection tolerances, on the videos
    ``draw`` (indices, repeats allowed); NaN without a true event."""
    import numpy as np

    from uglspot.metrics.spotting import average_precision

    truth = sum(parts[i][name][2] for i in draw)
    if not truth:
        return float("nan")
    scores = np.concatenate([parts[i][name][0] for i in draw])
    hits = np.concatenate([parts[i][name][1] for i in draw], axis=1)[:, np.argsort(-scores, kind="stable")]
    return sum(average_precision(row, truth) for row in hits) / len(hits)


def merge_by_class(per_head: dict[int, list[VideoPredictions]], choice: Sequence[int],
                   classes: Sequence[str]) -> list[VideoPredictions]:
    """Each video's events of class i taken from head ``choice[i]``'s
    predictions, in the order spotting gives them (by frame, then class)."""
    head_of = {name: choice[index] for index, name in enumerate(classes, 1)}
    order = {name: index for index, name in enumerate(classes)}
    merged = []
    for parts in zip(*per_head.values()):
        by_head = dict(zip(per_head, parts))
        events = [e for name, head in head_of.items() for e in by_head[head].events if e.label == name]
        merged.append(VideoPredictions(video=parts[0].video, events=sorted(events, key=lambda e: (e.frame, order[e.label]))))
    return merged


def apply_head_choice(model: UGLSpotter, choice: dict[str, str] | None, classes: Sequence[str],
                      where: str | Path) -> None:
    """Set the heads that ``inference.json`` (``where``) chose, class name →
    head name, on a model loaded from the same folder."""
    if not choice:
        return
    heads = [model.gate_choice()[0] if model.pick_candidates else 0] + [HEAD_NAMES.index(choice[c]) for c in classes]
    try:
        model.choose_heads(heads)
    except ValueError as exc:
        raise UserError(f"{where}: key 'head_choice' does not fit the model ({exc}); restore the file or use "
                        "the run's other checkpoint") from None
