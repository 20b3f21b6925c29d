"""uglspot's SoccerNet average-mAP against the official SoccerNet 0.2.0
evaluator on random games, against a plain greedy matcher written from the
definition, and against hand-computed cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _soccernet_helpers import CLASSES, game_time, official, random_labels, random_predictions, write_tree
from uglspot.data.soccernet import (GameLabels, GamePredictions, Prediction, parse_labels, read_labels_dir,
                                    read_predictions_dir)
from uglspot.errors import UserError
from uglspot.metrics.soccernet import (METRIC_TOLERANCES_S, SOCCERNET_V2_CLASSES, average_map,
                                       greedy_match)

pytest.importorskip("SoccerNet.Evaluation.ActionSpotting")

PER_CLASS = ("a_mAP_per_class", "a_mAP_per_class_visible", "a_mAP_per_class_unshown")
AVERAGES = ("a_mAP", "a_mAP_visible", "a_mAP_unshown")


def test_class_order_is_the_official_one() -> None:
    from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2

    assert SOCCERNET_V2_CLASSES == tuple(sorted(EVENT_DICTIONARY_V2, key=EVENT_DICTIONARY_V2.get))
    assert CLASSES == SOCCERNET_V2_CLASSES


def random_case(tmp_path: Path, seed: int, games: int = 3) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    labels = {f"league/season/game {seed}-{i}": random_labels(rng, int(rng.integers(5, 70)),
                                                              int(rng.integers(1, 17)))
              for i in range(games)}
    labels["nested/deeper/still/a game"] = random_labels(rng, 20, 5)  # games at another depth
    predictions = {game: random_predictions(rng, data) for game, data in labels.items()}
    predictions[next(iter(predictions))] = {"UrlLocal": "", "predictions": []}  # one game without any guess
    write_tree(tmp_path / "labels", labels, "Labels-v2.json")
    write_tree(tmp_path / "predictions", predictions, "results_spotting.json")
    return tmp_path / "labels", tmp_path / "predictions"


def assert_same(ours: dict[str, Any], reference: dict[str, Any], classes: tuple[str, ...] = CLASSES) -> None:
    for key in AVERAGES:
        assert ours[key] == pytest.approx(float(reference[key]), abs=1e-12, rel=0), key
    for key in PER_CLASS:
        assert list(ours[key]) == list(classes)
        got = np.array(list(ours[key].values()))
        np.testing.assert_allclose(got, np.asarray(reference[key], dtype=float), rtol=0, atol=1e-12, err_msg=key)


def ours(labels_dir: Path, predictions_dir: Path, metric: str, classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    return average_map(read_labels_dir(labels_dir), read_predictions_dir(predictions_dir), metric,
                       classes).to_json()


@pytest.mark.parametrize(("seed", "metrics", "classes"), [
    (0, ("tight",), CLASSES),
    (1, ("at1", "at2", "at3", "at4", "at5"), CLASSES),
    # loose has 12 tolerances; five classes keep the official run short, and the
    # other classes in the files must be ignored by both
    (2, ("loose",), ("Goal", "Corner", "Throw-in", "Ball out of play", "Foul")),
])
def test_matches_the_official_evaluator_on_random_games(tmp_path: Path, seed: int, metrics: tuple[str, ...],
                                                        classes: tuple[str, ...]) -> None:
    labels_dir, predictions_dir = random_case(tmp_path, seed, games=2)
    for metric in metrics:
        result = ours(labels_dir, predictions_dir, metric, classes)
        assert result["metric"] == metric
        assert_same(result, official(labels_dir, predictions_dir, metric, classes), classes)
        assert result["a_mAP"] > 0  # the case has true positives, so the comparison is not 0 == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_matches_the_official_evaluator_on_more_random_games(tmp_path: Path, seed: int) -> None:
    labels_dir, predictions_dir = random_case(tmp_path, seed, games=3)
    for metric in METRIC_TOLERANCES_S:
        assert_same(ours(labels_dir, predictions_dir, metric), official(labels_dir, predictions_dir, metric))


def test_matches_the_official_evaluator_on_real_soccernet_labels(tmp_path: Path, shared_labels: Path) -> None:
    """Two games of the real test split, with jittered and false guesses."""
    from uglspot.data.labels import read_e2e_labels
    from uglspot.data.soccernet import e2e_to_soccernet, write_game_predictions, write_labels

    videos = read_e2e_labels(shared_labels / "soccernetv2" / "test.json", allow_past_end=True)[:4]
    rng = np.random.default_rng(7)
    for game in e2e_to_soccernet(videos, "test.json"):
        write_labels(tmp_path / "labels", game)
        guesses = []
        for a in game.annotations:
            for _ in range(6):
                position = max(0, int(a.time_ms + rng.normal(0, 3000)))
                label = a.label if rng.random() < 0.8 else CLASSES[int(rng.integers(17))]
                guesses.append(Prediction(a.half, position, label, round(float(rng.random()), 2)))
        write_game_predictions(tmp_path / "predictions", GamePredictions.from_predictions(game.game, guesses))
    result = ours(tmp_path / "labels", tmp_path / "predictions", "tight")
    assert_same(result, official(tmp_path / "labels", tmp_path / "predictions", "tight"))
    assert 0.05 < result["a_mAP"] < 0.95


# ---------------------------------------------------------------- greedy matching


def plain_greedy(gt: list[int], preds: list[tuple[int, float]], half_window: int) -> list[bool]:
    """The definition, one ground truth at a time in time order."""
    used = [False] * len(preds)
    for g in sorted(gt):
        best = None
        for i, (slot, score) in enumerate(preds):
            if not used[i] and abs(slot - g) <= half_window and (best is None or score > preds[best][1]):
                best = i
        if best is not None:
            used[best] = True
    return used


@pytest.mark.parametrize(("gt", "preds", "half_window", "expected"), [
    # a tie goes to the earlier slot
    ([10], [(9, 0.5), (11, 0.5)], 1, [True, False]),
    # the higher score wins even when farther
    ([10], [(10, 0.2), (11, 0.9)], 1, [False, True]),
    # the first ground truth takes its best, the next one what is left
    ([10, 11], [(10, 0.9), (12, 0.1)], 1, [True, True]),
    # greedy in time order, not optimal: 12 finds its only candidate taken
    ([10, 12], [(9, 0.1), (11, 0.9)], 1, [False, True]),
    # outside the window: nothing
    ([10], [(12, 0.9)], 1, [False]),
    # a chain of three overlapping windows
    ([10, 12, 14], [(11, 0.9), (13, 0.8), (15, 0.7)], 2, [True, True, True]),
    # no ground truth
    ([], [(1, 0.3)], 5, [False]),
])
def test_greedy_match_table(gt: list[int], preds: list[tuple[int, float]], half_window: int,
                            expected: list[bool]) -> None:
    assert plain_greedy(gt, preds, half_window) == expected
    got = greedy_match(np.array(gt, dtype=np.int64), np.array([p for p, _ in preds], dtype=np.int64),
                       np.array([s for _, s in preds]), half_window, length=1000)
    assert got.tolist() == expected


def test_greedy_match_never_crosses_into_another_half_or_class() -> None:
    length = 100
    got = greedy_match(np.array([length - 1]), np.array([length, length + 1]), np.array([0.9, 0.8]), 5, length)
    assert got.tolist() == [False, False]


def test_greedy_match_equals_the_definition_on_random_chains() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        length = 60
        gt = sorted(set(rng.integers(0, length, size=int(rng.integers(0, 15))).tolist()))
        slots = sorted(set(rng.integers(0, length, size=int(rng.integers(0, 30))).tolist()))
        preds = [(s, round(float(rng.random()), 1)) for s in slots]
        half_window = int(rng.integers(0, 8))
        got = greedy_match(np.array(gt, dtype=np.int64), np.array(slots, dtype=np.int64),
                           np.array([s for _, s in preds]), half_window, length)
        assert got.tolist() == plain_greedy(gt, preds, half_window)


# ---------------------------------------------------------------- hand-computed cases


def labels_of(*events: tuple[int, str, int, str]) -> list[GameLabels]:
    """(half, label, position ms, visibility) events of one game 'g'."""
    data = {"annotations": [{"gameTime": game_time(h, t), "label": lab, "position": str(t), "team": "home",
                             "visibility": vis} for h, lab, t, vis in events]}
    return [parse_labels(data, "test", "g")]


def guesses(*items: tuple[int, str, int, float]) -> list[GamePredictions]:
    return [GamePredictions.from_predictions("g", [Prediction(h, t, lab, c) for h, lab, t, c in items])]


K = len(SOCCERNET_V2_CLASSES)


@pytest.mark.parametrize(("name", "truth", "predicted", "metric", "expected"), [
    ("no predictions", [(1, "Goal", 60_000, "visible")], [], "tight", (0.0, 0.0, 0.0)),
    ("one exact hit", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 60_000, 0.9)], "tight",
     (1 / K, 1 / K, 0.0)),
    # 1.5 s away: matched from δ = 3 s on (window δ/2), so mAP per δ = 0, 0, 1, 1, 1 /K
    ("hit from 3 s on", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 61_500, 0.9)], "tight",
     ((0 + 0.5 + 1 + 1) / 4 / K, (0 + 0.5 + 1 + 1) / 4 / K, 0.0)),
    ("single tolerance too tight", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 61_500, 0.9)], "at2",
     (0.0, 0.0, 0.0)),
    ("single tolerance wide enough", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 61_500, 0.9)], "at3",
     (1 / K, 1 / K, 0.0)),
    # unshown: the average is scaled by 17/13 over a range of tolerances ...
    ("unshown hit", [(1, "Goal", 60_000, "not shown")], [(1, "Goal", 60_000, 0.9)], "tight",
     (1 / K, 0.0, 1 / K * 17 / 13)),
    # ... and not at a single tolerance
    ("unshown hit at1", [(1, "Goal", 60_000, "not shown")], [(1, "Goal", 60_000, 0.9)], "at1",
     (1 / K, 0.0, 1 / K)),
    # a false guess of a class without ground truth costs nothing in 'all'
    ("other class guessed", [(1, "Goal", 60_000, "visible")],
     [(1, "Goal", 60_000, 0.9), (1, "Corner", 60_000, 0.95)], "tight", (1 / K, 1 / K, 0.0)),
    # one miss of two ground truths, both found at half precision: AP = 6/11 * 1 + ... see below
    ("half the events", [(1, "Goal", 60_000, "visible"), (2, "Goal", 60_000, "visible")],
     [(1, "Goal", 60_000, 0.9)], "at1", ((6 * 1.0) / 11 / K, (6 * 1.0) / 11 / K, 0.0)),
    # past 120 minutes both fold onto the last slot of the half and match
    ("past 120 minutes", [(2, "Goal", 125 * 60_000, "visible")], [(2, "Goal", 121 * 60_000, 0.9)], "at1",
     (1 / K, 1 / K, 0.0)),
    # the wrong half never matches
    ("wrong half", [(1, "Goal", 60_000, "visible")], [(2, "Goal", 60_000, 0.9)], "tight", (0.0, 0.0, 0.0)),
    # a score above 1 counts at every threshold, a negative one is dropped
    ("score above one", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 60_000, 1.5)], "at1", (1 / K, 1 / K, 0.0)),
    ("negative score", [(1, "Goal", 60_000, "visible")], [(1, "Goal", 60_000, -0.5)], "at1", (0.0, 0.0, 0.0)),
])
def test_hand_computed(name: str, truth: list, predicted: list, metric: str,
                       expected: tuple[float, float, float]) -> None:
    result = average_map(labels_of(*truth), guesses(*predicted), metric)
    got = (result.a_mAP, result.a_mAP_visible, result.a_mAP_unshown)
    assert got == pytest.approx(expected, abs=1e-12), name


def test_half_the_events_per_class_value() -> None:
    # Recall 0.5 at precision 1 for thresholds up to 0.9: levels 0..0.5 (six of eleven) reach precision 1.
    result = average_map(labels_of((1, "Goal", 60_000, "visible"), (2, "Goal", 60_000, "visible")),
                         guesses((1, "Goal", 60_000, 0.9)), "at1")
    assert result.a_mAP_per_class["Goal"] == pytest.approx(6 / 11)
    assert all(v == 0 for c, v in result.a_mAP_per_class.items() if c != "Goal")


def test_a_later_prediction_in_the_same_slot_overwrites_an_earlier_one() -> None:
    truth = labels_of((1, "Goal", 60_000, "visible"))
    hit_then_negative = guesses((1, "Goal", 60_000, 0.9), (1, "Goal", 60_100, -1.0))
    negative_then_hit = guesses((1, "Goal", 60_100, -1.0), (1, "Goal", 60_000, 0.9))
    assert average_map(truth, hit_then_negative, "at1").a_mAP == 0.0
    assert average_map(truth, negative_then_hit, "at1").a_mAP == pytest.approx(1 / K)


def test_a_later_label_in_the_same_slot_decides_its_visibility() -> None:
    truth = labels_of((1, "Goal", 60_000, "visible"), (1, "Goal", 60_400, "not shown"))
    result = average_map(truth, guesses((1, "Goal", 60_000, 0.9)), "at1")
    assert (result.a_mAP_visible, result.a_mAP_unshown) == (0.0, pytest.approx(1 / K))


def test_nan_confidence_is_dropped_like_a_negative_one() -> None:
    truth = labels_of((1, "Goal", 60_000, "visible"))
    assert average_map(truth, guesses((1, "Goal", 60_000, math.nan)), "at1").a_mAP == 0.0


def test_predictions_for_a_game_without_labels_are_an_error() -> None:
    stray = [GamePredictions.from_predictions("other", [Prediction(1, 0, "Goal", 0.5)])]
    with pytest.raises(UserError, match="'other'.*no labels"):
        average_map(labels_of((1, "Goal", 60_000, "visible")), stray)


def test_unknown_metric_is_an_error() -> None:
    with pytest.raises(UserError, match="unknown SoccerNet metric 'at6'"):
        average_map(labels_of(), [], "at6")
