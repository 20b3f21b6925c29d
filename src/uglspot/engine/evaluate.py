"""The dataset's model-selection metric over predicted events.

``frame_map``: mean of mAP at δ = 1, 2, 4 frames (E2E-Spot's selection rule,
``uglspot.metrics.spotting.frame_map``). ``soccernet_tight``: SoccerNet's
tight average-mAP (``uglspot.metrics.soccernet``), with the E2E-Spot
video ids ``<game>/<half>`` grouped into games.
"""

from __future__ import annotations

from typing import Any, Sequence

from uglspot.data.labels import Video, VideoPredictions


def evaluate_frames(videos: Sequence[Video], predictions: Sequence[VideoPredictions],
                    classes: Sequence[str]) -> dict[str, Any]:
    """mAP at frame tolerances 0, 1, 2, 4 and the selection mean over 1, 2, 4,
    by the scorer of ``uglspot eval frames``: every video counts, so the
    predictions in a video without ground-truth events are false positives."""
    from uglspot.metrics.spotting import frame_map

    result = frame_map(videos, predictions, classes)
    return {"metric": "frame_map", "value": result.selection_map, **result.to_json()}


def evaluate_soccernet(videos: Sequence[Video], predictions: Sequence[VideoPredictions],
                       classes: Sequence[str]) -> dict[str, Any]:
    """SoccerNet tight and loose average-mAP of halves ``<game>/<1|2>``."""
    from uglspot.data.soccernet import e2e_to_soccernet, predictions_to_soccernet
    from uglspot.metrics.soccernet import average_map

    labels = e2e_to_soccernet(videos, "validation labels")
    games = predictions_to_soccernet(predictions, {v.video: v.fps for v in videos}, "predictions")
    tight = average_map(labels, games, "tight", list(classes))
    loose = average_map(labels, games, "loose", list(classes))
    return {"metric": "soccernet_tight", "value": tight.a_mAP, "tight": tight.to_json(), "loose": loose.to_json()}


def evaluate(metric: str, videos: Sequence[Video], predictions: Sequence[VideoPredictions],
             classes: Sequence[str]) -> dict[str, Any]:
    if metric == "frame_map":
        return evaluate_frames(videos, predictions, classes)
    if metric == "soccernet_tight":
        return evaluate_soccernet(videos, predictions, classes)
    raise ValueError(f"unknown metric {metric!r}")


def score_predictions(metric: str, videos: Sequence[Video], predictions: Sequence[VideoPredictions],
                      classes: Sequence[str]) -> float:
    """The single number that picks the best checkpoint (higher is better)."""
    value = evaluate(metric, videos, predictions, classes)["value"]
    return float("nan") if value is None else float(value)


def class_thresholds(videos: Sequence[Video], predictions: Sequence[VideoPredictions], classes: Sequence[str],
                     tolerance: int) -> dict[str, float]:
    """Per class, the score cut-off with the best F1 of ``predictions`` at
    ±``tolerance`` frames (the matching of ``uglspot eval frames``): what
    ``spot`` keeps by default. Classes without ground truth or predictions
    in ``videos`` get none."""
    import numpy as np

    from uglspot.metrics.spotting import best_f1_threshold, match_frames

    if not any(v.events for v in videos):
        return {}
    preds = list(predictions)
    matches = match_frames(videos, preds, classes, (tolerance,))
    scores: dict[str, list[float]] = {name: [] for name in classes}
    for pred in preds:
        for event in pred.events:
            scores[event.label].append(event.score)
    return {name: best_f1_threshold(matches.hits[tolerance][name], matches.num_truth[name], np.array(scores[name]))
            for name in classes if matches.num_truth[name] and scores[name]}


def choose_class_thresholds(settings: Any, videos: Sequence[Video], predictions: Sequence[VideoPredictions],
                            classes: Sequence[str]) -> None:
    """Set ``settings.class_thresholds`` (an ``InferenceSettings``) from a
    validation's ``predictions``, at ±the NMS radius (at least 1 frame): the
    events closer than that are one event to ``spot`` anyway."""
    settings.threshold_tolerance = max(1, settings.nms_window)
    settings.class_thresholds = class_thresholds(videos, predictions, classes, settings.threshold_tolerance)
