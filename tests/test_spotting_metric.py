from __future__ import annotations

import json
import random

import pytest

from _frames_helpers import random_case, reference_map
from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.metrics.spotting import frame_map


def gt(video: str, num_frames: int, *events: tuple[str, int]) -> Video:
    return Video(video=video, num_frames=num_frames, fps=25.0,
                 events=[Event(frame=f, label=label) for label, f in events])


def pr(video: str, *events: tuple[str, int, float]) -> VideoPredictions:
    return VideoPredictions(video=video, events=[Event(frame=f, label=label, score=s) for label, f, s in events])


# Each case: (truth, predictions, classes, {tolerance: {class: AP}}), computed by hand in the comments.
HAND_CASES = [
    pytest.param(
        [gt("v", 40, ("a", 10), ("a", 20))],
        [pr("v", ("a", 10, .9), ("a", 30, .8), ("a", 21, .7))], ["a"],
        # δ=0: 10 TP (p=1/1); 30 and 21 miss -> (1)/2.  δ=1: 21 takes 20, p=2/3 -> (1+2/3)/2.
        # δ=10: 30 takes 20 (p=2/2); 21 finds nothing left -> (1+1)/2.
        {0: {"a": 1 / 2}, 1: {"a": (1 + 2 / 3) / 2}, 10: {"a": 1.0}},
        id="basic"),
    pytest.param(
        [gt("v", 400, ("a", 0), ("a", 50), ("a", 100))],
        [pr("v", ("a", 51, .9), ("a", 200, .8), ("a", 300, .7), ("a", 0, .6), ("a", 99, .5))], ["a"],
        # δ=1: precisions at TPs 1/1, 2/4, 3/5 -> monotone from the right 1, .6, .6 -> 2.2/3.
        # δ=0: only 0 hits, at rank 4 -> .25/3.
        {0: {"a": .25 / 3}, 1: {"a": 2.2 / 3}},
        id="monotone-from-the-right"),
    pytest.param(
        [gt("v", 30, ("a", 10), ("a", 12))],
        [pr("v", ("a", 11, .9), ("a", 12, .8))], ["a"],
        # 11 is equally near 10 and 12; 10 is earlier in the file and wins; 12 then takes 12 -> 1.
        {1: {"a": 1.0}},
        id="equal-distance-earlier-in-file-sorted"),
    pytest.param(
        [gt("v", 30, ("a", 12), ("a", 10))],
        [pr("v", ("a", 11, .9), ("a", 12, .8))], ["a"],
        # Same frames, file order 12 then 10: 11 takes 12; 12's nearest untaken is 10, 2 away -> miss.
        # δ=1: 1/2.  δ=2: 12 takes 10 at rank 2 -> (1+1)/2.
        {1: {"a": .5}, 2: {"a": 1.0}},
        id="equal-distance-earlier-in-file-unsorted"),
    pytest.param(
        [gt("v", 30, ("a", 5))],
        [pr("v", ("a", 20, .5), ("a", 5, .5))], ["a"],
        # Equal scores keep input order: 20 misses at rank 1, 5 hits at rank 2 -> .5.
        {0: {"a": .5}},
        id="score-tie-input-order"),
    pytest.param(
        [gt("v", 30, ("a", 5))],
        [pr("v", ("a", 5, .5), ("a", 20, .5))], ["a"],
        {0: {"a": 1.0}},
        id="score-tie-input-order-swapped"),
    pytest.param(
        [gt("v1", 30, ("a", 5)), gt("v2", 30)],
        [pr("v2", ("a", 5, .5)), pr("v1", ("a", 5, .5))], ["a"],
        # Ties across videos keep the order of the prediction list: v2's false positive ranks first.
        {0: {"a": .5}},
        id="score-tie-across-videos"),
    pytest.param(
        [gt("v", 30, ("a", 7), ("a", 7))],
        [pr("v", ("a", 7, .9), ("a", 7, .8))], ["a"],
        # E2E-Spot: copies at one frame are one target, both count in the denominator -> 1/2.
        {0: {"a": .5}},
        id="duplicate-ground-truth"),
    pytest.param(
        [gt("v", 30, ("a", 10), ("b", 20))],
        [pr("v", ("a", 10, .9), ("b", 25, .9), ("c", 3, .9))], ["a", "b", "c"],
        # c has no ground truth: AP None, left out of the mean. δ=0: a 1, b 0.  δ=5: both 1.
        {0: {"a": 1.0, "b": 0.0, "c": None}, 5: {"a": 1.0, "b": 1.0, "c": None}},
        id="class-without-ground-truth"),
    pytest.param(
        [gt("v", 30, ("a", 10), ("b", 20))], [], ["a", "b"],
        {0: {"a": 0.0, "b": 0.0}, 4: {"a": 0.0, "b": 0.0}},
        id="no-predictions"),
    pytest.param(
        [gt("v", 10, ("a", 0), ("a", 9))],
        [pr("v", ("a", 0, .3), ("a", 9, .4), ("a", 1, .9))], ["a"],
        # δ=0: 1 misses; 9 hits (1/2); 0 hits (2/3) -> monotone 2/3, 2/3 -> 2/3.
        # δ=1: 1 takes 0 (1/1); 9 hits (2/2); 0 finds nothing left -> 1.
        {0: {"a": 2 / 3}, 1: {"a": 1.0}},
        id="first-and-last-frame"),
    pytest.param(
        [gt("v1", 30, ("a", 10)), gt("v2", 30, ("a", 10))],
        [pr("v1", ("a", 10, .9), ("a", 10, .8)), pr("v2", ("a", 12, .7))], ["a"],
        # v1's second prediction cannot take v2's ground truth: miss at rank 2; v2 hits at rank 3 (2/3).
        {2: {"a": (1 + 2 / 3) / 2}},
        id="videos-are-separate"),
]


@pytest.mark.parametrize("truth, preds, classes, expected", HAND_CASES)
def test_hand_computed(truth: list, preds: list, classes: list, expected: dict) -> None:
    result = frame_map(truth, preds, classes, tolerances=tuple(expected))
    for tol, aps in expected.items():
        assert result.per_class[tol] == pytest.approx(aps, abs=1e-12)
        present = [ap for ap in aps.values() if ap is not None]
        assert result.map[tol] == pytest.approx(sum(present) / len(present), abs=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_matches_plain_reference_on_random_cases(seed: int) -> None:
    rng = random.Random(seed)
    classes = ["a", "b", "c", "d"][:rng.randint(1, 4)]
    truth, preds = random_case(rng, rng.randint(1, 6), classes, events_per_video=10, preds_per_event=4,
                               score_levels=rng.choice([None, 2, 5]))
    if not any(v.events for v in truth):
        truth[0].events.append(Event(frame=0, label=classes[0]))
    tolerances = (0, 1, 2, 4, 7)
    result = frame_map(truth, preds, classes, tolerances)
    for tol in tolerances:
        expected_map, expected_aps = reference_map(truth, preds, classes, tol)
        assert result.per_class[tol] == pytest.approx(expected_aps, abs=1e-12), tol
        assert result.map[tol] == pytest.approx(expected_map, abs=1e-12), tol


def test_matches_reference_on_crowded_video() -> None:
    """Many ground truths close together and many predictions per event: long
    runs of taken ground truths that the nearest-untaken search must skip."""
    rng = random.Random(7)
    events = [Event(frame=rng.randrange(400), label=rng.choice("xy")) for _ in range(250)]
    truth = [Video(video="long", num_frames=400, fps=30.0, events=events)]
    preds = [VideoPredictions("long", [Event(frame=max(0, min(399, e.frame + rng.randint(-3, 3))), label=e.label,
                                             score=rng.randrange(20) / 20) for e in events for _ in range(6)])]
    result = frame_map(truth, preds, ["x", "y"], (0, 1, 2, 4, 16))
    for tol in result.tolerances:
        expected_map, expected_aps = reference_map(truth, preds, ["x", "y"], tol)
        assert result.per_class[tol] == pytest.approx(expected_aps, abs=1e-12)
        assert result.map[tol] == pytest.approx(expected_map, abs=1e-12)


def test_perfect_predictions_score_one_at_every_tolerance() -> None:
    truth = [gt("v", 50, ("a", 0), ("b", 3), ("a", 49)), gt("w", 5, ("b", 4))]
    preds = [pr(v.video, *[(e.label, e.frame, 1.0) for e in v.events]) for v in truth]
    result = frame_map(truth, preds, ["a", "b"])
    assert result.tolerances == (0, 1, 2, 4)
    assert all(result.map[t] == 1.0 for t in result.tolerances)
    assert result.selection_map == 1.0


def test_json_shape_and_selection_mean() -> None:
    truth = [gt("v", 40, ("a", 10), ("a", 20))]
    preds = [pr("v", ("a", 10, .9), ("a", 30, .8), ("a", 21, .7))]
    result = frame_map(truth, preds, ["a", "b"], (0, 1, 2, 4))
    data = json.loads(json.dumps(result.to_json()))
    assert data["tolerances"] == [0, 1, 2, 4]
    assert set(data) == {"tolerances", "mAP", "per_class"}
    assert set(data["mAP"]) == {"0", "1", "2", "4"}
    assert data["per_class"]["1"] == {"a": pytest.approx((1 + 2 / 3) / 2), "b": None}
    assert all(0 <= x <= 1 for x in data["mAP"].values())
    assert result.selection_map == pytest.approx((result.map[1] + result.map[2] + result.map[4]) / 3)
    assert frame_map(truth, preds, ["a"], (0, 1)).selection_map is None


@pytest.mark.parametrize("preds, tolerances, message", [
    ([pr("nope", ("a", 1, .5))], (0,), "video 'nope' is not in the ground truth"),
    ([pr("v", ("zz", 1, .5))], (0,), r"event #0: label 'zz' is not one of the classes"),
    ([pr("v", ("a", 1, float("nan")))], (0,), "NaN or infinite"),
    ([], (0, -1), "tolerance -1"),
    ([], (1, 1), "repeat"),
    ([], (), "no tolerances"),
    ([], (1.5,), "tolerance 1.5"),
])
def test_bad_input_raises(preds: list, tolerances: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame_map([gt("v", 10, ("a", 1))], preds, ["a"], tolerances)


def test_ground_truth_problems_raise() -> None:
    with pytest.raises(ValueError, match="no events"):
        frame_map([gt("v", 10)], [], ["a"])
    with pytest.raises(ValueError, match="duplicate video id 'v'"):
        frame_map([gt("v", 10, ("a", 1)), gt("v", 10)], [], ["a"])
    with pytest.raises(ValueError, match="label 'b' is not one of the classes"):
        frame_map([gt("v", 10, ("b", 1))], [], ["a"])
