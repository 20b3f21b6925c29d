"""A threshold that fits the model (issue 22): validation picks, per class,
the score cut-off with the best F1 at the run's tolerance; it is stored in
inference.json and `spot` keeps events at it by default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.engine.evaluate import class_thresholds
from uglspot.metrics.spotting import best_f1_threshold


@pytest.mark.parametrize("hits, scores, num_truth, most, expected", [
    # F1 after 1..4 kept: 2/3, 2/4, 4/5, 4/6: the best keeps three, down to 0.7
    ([1, 0, 1, 0], [.9, .8, .7, .2], 2, None, .7),
    ([1, 0, 1, 0], [.9, .8, .7, .2], 2, 1.0, .9),  # at most 2 kept: F1 2/3 (one) beats 2/4 (two)
    ([1, 1, 0], [.5, .5, .4], 2, None, .5),  # a cut-off never splits equal scores
    ([0, 0], [.6, .3], 0, None, .6),  # no ground truth: the top score
    ([], [], 1, None, float("inf")),  # no predictions
])
def test_best_f1_threshold_hand_computed(hits, scores, num_truth, most, expected) -> None:
    assert best_f1_threshold(np.array(hits, bool), num_truth, np.array(scores), most) == expected


def test_class_thresholds_match_as_eval_frames_does() -> None:
    truth = [Video("v1", 40, 25.0, [Event(10, "a"), Event(20, "a")]),
             Video("v2", 30, 25.0, [Event(0, "b"), Event(29, "b")])]
    predictions = [VideoPredictions(video, [Event(frame, label, score=score) for frame, label, score in events])
                   for video, events in [("v1", [(10, "a", .9), (30, "a", .8), (21, "a", .7), (5, "a", .2),
                                                 (3, "c", .9)]),
                                         ("v2", [(29, "b", .6), (28, "b", .5)])]]
    # a: as the first table row; b: 29 hits, 28 misses (29 is taken, 0 is 28 frames away): 0.6; c: no truth
    assert class_thresholds(truth, predictions, ["a", "b", "c"], 1) == {"a": .7, "b": .6}
    # at ±10 frames 30 takes 20 and 21 finds both taken: the first two are hits, F1 1 down to 0.8
    assert class_thresholds(truth, predictions, ["a", "b", "c"], 10)["a"] == .8
    assert class_thresholds([Video("v", 10, 25.0, [])], predictions[:1], ["a"], 1) == {}


def test_training_stores_the_validation_thresholds_beside_the_model(faults_run) -> None:
    from uglspot.engine.state import resolve

    run, _ = faults_run
    for name in ("best", "last"):
        settings = json.loads((resolve(run / "checkpoints", name) / "inference.json").read_text())
        assert settings["threshold_tolerance"] == 1  # the run's NMS radius
        chosen = settings["class_thresholds"]
        assert set(chosen) <= set(settings["classes"]) and chosen
        assert all(settings["threshold"] <= value <= 1 for value in chosen.values())
