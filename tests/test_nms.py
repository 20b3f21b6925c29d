from __future__ import annotations

import math
import random

import numpy as np
import pytest

from uglspot.data.labels import Event, VideoPredictions
from uglspot.post.nms import nms_events, nms_predictions, peaks_to_events, soft_nms_events, stitch_windows


def E(label: str, frame: int, score: float) -> Event:
    return Event(frame=frame, label=label, score=score)


def as_tuples(events: list[Event]) -> list[tuple[str, int, float]]:
    return [(e.label, e.frame, e.score) for e in events]


# (events, window, survivors in output order), worked out by hand from the rule
# "suppressed iff another event of its class at another frame within ±w scores strictly higher".
NMS_CASES = [
    pytest.param([E("a", 10, .9), E("a", 11, .8), E("a", 13, .7)], 1,
                 [("a", 10, .9), ("a", 13, .7)], id="neighbour-suppressed-far-one-kept"),
    pytest.param([E("a", 10, .5), E("a", 11, .5)], 1,
                 [("a", 10, .5), ("a", 11, .5)], id="equal-scores-both-survive"),
    pytest.param([E("a", 10, .9), E("a", 10, .3)], 3,
                 [("a", 10, .9), ("a", 10, .3)], id="same-frame-never-suppresses"),
    pytest.param([E("a", 10, .9), E("b", 10, .1), E("b", 11, .2)], 1,
                 [("a", 10, .9), ("b", 11, .2)], id="classes-independent"),
    pytest.param([E("a", 3, .1), E("a", 4, .9), E("a", 5, .2)], 0,
                 [("a", 3, .1), ("a", 4, .9), ("a", 5, .2)], id="window-0-keeps-all"),
    # Not greedy: a@1 is itself suppressed by a@2 yet still suppresses a@0.
    pytest.param([E("a", 0, .3), E("a", 1, .5), E("a", 2, .7)], 1,
                 [("a", 2, .7)], id="chain-suppressed-events-still-suppress"),
    pytest.param([E("a", 0, .9), E("a", 2, .8), E("a", 5, .85), E("a", 6, .1)], 2,
                 [("a", 0, .9), ("a", 5, .85)], id="window-2"),
    # a@10 (.5) loses to a@11 (.55), which loses to the other a@10 (.6).
    pytest.param([E("a", 10, .5), E("a", 10, .6), E("a", 11, .55)], 1,
                 [("a", 10, .6)], id="duplicate-frame-with-rival"),
    pytest.param([E("a", 7, .4), E("b", 1, .3), E("a", 1, .2), E("b", 7, .1)], 1,
                 [("b", 1, .3), ("a", 1, .2), ("a", 7, .4), ("b", 7, .1)], id="output-by-frame-then-input"),
    pytest.param([], 2, [], id="empty"),
]


@pytest.mark.parametrize("events, window, expected", NMS_CASES)
def test_nms_table(events: list[Event], window: int, expected: list) -> None:
    assert as_tuples(nms_events(events, window)) == expected


def _nms_reference(events: list[Event], window: int) -> list[Event]:
    survivors = [e for e in events
                 if not any(o.label == e.label and o.frame != e.frame and abs(o.frame - e.frame) <= window
                            and o.score > e.score for o in events)]
    return sorted(survivors, key=lambda e: e.frame)


@pytest.mark.parametrize("seed", range(40))
def test_nms_matches_pairwise_reference(seed: int) -> None:
    rng = random.Random(seed)
    events = [E(rng.choice("ab"), rng.randrange(40), rng.randrange(6) / 5) for _ in range(rng.randint(0, 60))]
    window = rng.randint(0, 6)
    assert nms_events(events, window) == _nms_reference(events, window)


def test_nms_predictions_per_video_and_bad_window() -> None:
    preds = [VideoPredictions("v1", [E("a", 1, .2), E("a", 2, .9)]), VideoPredictions("v2", [E("a", 1, .2)])]
    out = nms_predictions(preds, 1)
    assert [p.video for p in out] == ["v1", "v2"]
    assert as_tuples(out[0].events) == [("a", 2, .9)] and as_tuples(out[1].events) == [("a", 1, .2)]
    with pytest.raises(ValueError, match="negative"):
        nms_events([E("a", 1, .2)], -1)
    with pytest.raises(ValueError, match="no score"):
        nms_events([Event(frame=1, label="a")], 1)


G1 = 1 - math.exp(-0.5)  # decay one frame away with sigma 1: 0.393469
G2 = 1 - math.exp(-2.0)  # two frames away with sigma 1: 0.864665

# (events, sigma, window, threshold, expected (label, frame, decayed score)), by hand.
SOFT_CASES = [
    # keep a@10; a@11 decays by G1; a@14 is outside ±2 and untouched; then a@14, then a@11.
    pytest.param([E("a", 10, .9), E("a", 11, .8), E("a", 14, .5)], 1.0, 2, 1e-3,
                 [("a", 10, .9), ("a", 11, .8 * G1), ("a", 14, .5)], id="one-decay"),
    # keep a@0; a@1 -> .8*G1, a@2 -> .9*G2 = .778; keep a@2, a@1 decays again by G1.
    pytest.param([E("a", 0, 1.0), E("a", 2, .9), E("a", 1, .8)], 1.0, 2, 1e-3,
                 [("a", 0, 1.0), ("a", 1, .8 * G1 * G1), ("a", 2, .9 * G2)], id="compounding"),
    pytest.param([E("a", 5, .7), E("a", 5, .6)], 1.0, 2, 1e-3,
                 [("a", 5, .7)], id="same-frame-drops-to-zero"),
    # sigma 2, one frame: factor 1-exp(-1/8) = .1175, so .01 -> .001175.
    pytest.param([E("a", 0, 1.0), E("a", 1, .01)], 2.0, 2, 1e-3,
                 [("a", 0, 1.0), ("a", 1, .01 * (1 - math.exp(-1 / 8)))], id="just-above-threshold"),
    pytest.param([E("a", 0, 1.0), E("a", 1, .01)], 2.0, 2, 1e-2,
                 [("a", 0, 1.0)], id="below-threshold-dropped"),
    pytest.param([E("a", 0, .9), E("b", 0, .8)], 1.0, 5, 1e-3,
                 [("a", 0, .9), ("b", 0, .8)], id="classes-independent"),
    # equal scores: the earlier input is kept first and decays the other.
    pytest.param([E("a", 3, .5), E("a", 4, .5)], 1.0, 1, 1e-3,
                 [("a", 3, .5), ("a", 4, .5 * G1)], id="tie-earlier-input-first"),
]


@pytest.mark.parametrize("events, sigma, window, threshold, expected", SOFT_CASES)
def test_soft_nms_table(events: list[Event], sigma: float, window: int, threshold: float, expected: list) -> None:
    got = as_tuples(soft_nms_events(events, sigma, window, threshold))
    assert [g[:2] for g in got] == [x[:2] for x in expected]
    assert [g[2] for g in got] == pytest.approx([x[2] for x in expected], rel=1e-12)


def test_soft_nms_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="sigma"):
        soft_nms_events([E("a", 1, .5)], 0.0, 1)
    with pytest.raises(ValueError, match="window"):
        soft_nms_events([E("a", 1, .5)], 1.0, -2)


STITCH_CASES = [
    # frames 0-1 from the first window only, frame 2 the mean of both, frame 3 the second only;
    # the second window's third row (frame 4) is past the end and clipped.
    pytest.param(4, [(0, [[1, 0], [1, 0], [1, 0]]), (2, [[0, 1], [0, 1], [.2, .8]])],
                 [[1, 0], [1, 0], [.5, .5], [0, 1]], id="overlap-and-clip-end"),
    # starts before frame 0: rows for frames -2 and -1 are dropped.
    pytest.param(3, [(-2, [[9, 9], [9, 9], [.4, .6]])],
                 [[.4, .6], [0, 0], [0, 0]], id="clip-start-and-zero-support"),
    pytest.param(2, [(5, [[1, 1]]), (-3, [[1, 1]]), (0, [[.3, .7]])],
                 [[.3, .7], [0, 0]], id="windows-entirely-outside-ignored"),
    pytest.param(2, [(0, [[.2, .8], [.6, .4]]), (0, [[.4, .6], [.6, .4]]), (1, [[.3, .7]])],
                 [[.3, .7], [.5, .5]], id="three-way-support"),
]


@pytest.mark.parametrize("num_frames, windows, expected", STITCH_CASES)
def test_stitch_windows_table(num_frames: int, windows: list, expected: list) -> None:
    out = stitch_windows(num_frames, [(start, np.asarray(p, dtype=np.float32)) for start, p in windows])
    assert out.shape == (num_frames, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_stitch_windows_rejects_inconsistent_widths() -> None:
    with pytest.raises(ValueError, match="window #1"):
        stitch_windows(4, [(0, np.zeros((2, 3))), (1, np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="no windows"):
        stitch_windows(4, [])


PROBS = np.array([[.9, .05, .05],
                  [.2, .7, .1],
                  [.3, .3, .4]])

PEAK_CASES = [
    pytest.param(.1, False, 0, [("x", 1, .7), ("y", 1, .1), ("x", 2, .3), ("y", 2, .4)], id="high-recall"),
    pytest.param(.35, False, 0, [("x", 1, .7), ("y", 2, .4)], id="higher-threshold"),
    pytest.param(.0, True, 0, [("x", 1, .7), ("y", 2, .4)], id="argmax-skips-background"),
    pytest.param(.5, True, 100, [("x", 101, .7)], id="argmax-threshold-and-offset"),
    pytest.param(.95, False, 0, [], id="none"),
]


@pytest.mark.parametrize("threshold, argmax_only, offset, expected", PEAK_CASES)
def test_peaks_to_events_table(threshold: float, argmax_only: bool, offset: int, expected: list) -> None:
    events = peaks_to_events(PROBS, ["x", "y"], threshold, argmax_only=argmax_only, frame_offset=offset)
    assert as_tuples(events) == expected
    assert all(isinstance(e.frame, int) and isinstance(e.score, float) for e in events)


def test_peaks_to_events_checks_width() -> None:
    with pytest.raises(ValueError, match=r"expected \(T, 4\)"):
        peaks_to_events(PROBS, ["x", "y", "z"], .1)


def test_stitch_then_peaks_then_nms_pipeline() -> None:
    # Two overlapping windows agree on a peak of class "x" at frame 3.
    window = np.tile([.9, .1], (6, 1))
    window[3] = [.1, .9]
    window[4] = [.5, .5]
    probs = stitch_windows(8, [(0, window), (3, np.tile([.9, .1], (3, 1)))])
    events = nms_events(peaks_to_events(probs, ["x"], .2), 1)
    assert as_tuples(events) == [("x", 3, pytest.approx(.5))]
