"""Every mAP the package prints or uses comes from the scorer behind
``uglspot eval frames``: model selection and ``predict`` (engine/evaluate),
and the report's AP table and precision-recall curves, on cases where the
old paths differed: a video without ground-truth events (its predictions are
false positives) and a ground-truth event written twice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from uglspot.cli import main
from uglspot.data.labels import Event, Video, VideoPredictions, write_e2e_labels, write_predictions
from uglspot.engine.evaluate import evaluate, score_predictions
from uglspot.metrics.spotting import frame_map, match_frames
from uglspot.report.curves import pr_curves

CLASSES = ["a", "b"]


def case(rng: np.random.Generator) -> tuple[list[Video], list[VideoPredictions]]:
    """Three videos, one without events; a duplicated event; predictions near
    the events, a few far away, and high-scoring ones in the quiet video."""
    truth, preds = [], []
    for k in range(3):
        events = [] if k == 2 else sorted(
            [Event(int(f), str(rng.choice(CLASSES))) for f in rng.integers(0, 200, 6)], key=lambda e: e.frame)
        if events:
            events.append(Event(events[0].frame, events[0].label))  # the same event written twice
        truth.append(Video(f"v{k}", 200, 25.0, events))
        guesses = [Event(int(np.clip(e.frame + rng.integers(-3, 4), 0, 199)), e.label, score=float(rng.random()))
                   for e in events if rng.random() < 0.8]
        guesses += [Event(int(f), str(rng.choice(CLASSES)), score=float(rng.random()) + (0.5 if k == 2 else 0))
                    for f in rng.integers(0, 200, 4)]
        preds.append(VideoPredictions(f"v{k}", guesses))
    return truth, preds


@pytest.mark.parametrize("seed", range(4))
def test_predict_and_model_selection_give_the_numbers_of_eval_frames(seed: int, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    truth, preds = case(np.random.default_rng(seed))
    (tmp_path / "class.txt").write_text("\n".join(CLASSES) + "\n")
    write_e2e_labels(truth, tmp_path / "test.json")
    write_predictions(preds, tmp_path / "predictions.json")
    assert main(["eval", "frames", str(tmp_path / "test.json"), str(tmp_path / "predictions.json"), "--json"]) == 0
    official = json.loads(capsys.readouterr().out)

    metrics = evaluate("frame_map", truth, preds, CLASSES)  # what predict writes to metrics.json
    assert metrics["mAP"] == official["mAP"]
    assert metrics["per_class"] == official["per_class"]
    selection = score_predictions("frame_map", truth, preds, CLASSES)  # what picks the best checkpoint
    assert selection == pytest.approx(np.mean([official["mAP"][t] for t in ("1", "2", "4")]))


def test_false_positives_in_a_video_without_events_lower_the_map() -> None:
    truth = [Video("v", 100, 25.0, [Event(10, "a")]), Video("quiet", 100, 25.0, [])]
    hit = [VideoPredictions("v", [Event(10, "a", score=0.5)])]
    assert evaluate("frame_map", truth, hit, ["a"])["mAP"]["0"] == 1.0
    with_false_alarm = hit + [VideoPredictions("quiet", [Event(3, "a", score=0.9)])]
    assert evaluate("frame_map", truth, with_false_alarm, ["a"])["mAP"]["0"] == 0.5


def drawn_area(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the step curve the report draws, precision made monotone
    from the right (the interpolation of the AP definition)."""
    if precision.size == 0:
        return 0.0
    monotone = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(monotone * np.diff(np.concatenate([[0.0], recall]))))


@pytest.mark.parametrize("seed", range(4))
def test_curve_area_equals_the_table_ap(seed: int) -> None:
    truth, preds = case(np.random.default_rng(10 + seed))
    tolerances = (0, 1, 2, 4)
    table = frame_map(truth, preds, CLASSES, tolerances)
    curves = pr_curves(match_frames(truth, preds, CLASSES, tolerances))
    for tolerance in tolerances:
        for label in CLASSES:
            curve = curves[(label, tolerance)]
            assert drawn_area(curve.precision, curve.recall) == pytest.approx(table.per_class[tolerance][label])
            assert curve.average_precision == pytest.approx(table.per_class[tolerance][label])


def test_a_duplicated_event_counts_twice_in_the_curve_as_in_the_table() -> None:
    truth = [Video("v", 100, 25.0, [Event(10, "a"), Event(10, "a"), Event(40, "a")])]
    preds = [VideoPredictions("v", [Event(10, "a", score=0.9), Event(40, "a", score=0.8)])]
    curve = pr_curves(match_frames(truth, preds, ["a"], (0,)))[("a", 0)]
    np.testing.assert_allclose(curve.recall, [1 / 3, 2 / 3])
    assert drawn_area(curve.precision, curve.recall) == pytest.approx(2 / 3)
    assert frame_map(truth, preds, ["a"], (0,)).per_class[0]["a"] == pytest.approx(2 / 3)
