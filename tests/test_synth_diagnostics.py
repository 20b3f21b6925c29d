"""The ground-truth flag of synthetic entity stores and the share of true
card boxes the attention keeps, against hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest

from uglspot.data.labels import Event
from uglspot.entities.store import EntityStore
from uglspot.synth.config import ENTITY_VOCABULARY, RED, YELLOW, DetectorSimConfig
from uglspot.synth.diagnostics import KeptShare, kept_card_boxes
from uglspot.synth.detector import simulate_detections
from uglspot.synth.render import RenderedFrame


def test_kept_card_boxes_hand_table():
    # 3 frames, 4 slots. A yellow card event at frame 0 (frames 0..1 with frames_after=1).
    cls = np.array([[YELLOW, YELLOW, 0, RED], [YELLOW, 5, YELLOW, 0], [YELLOW, YELLOW, YELLOW, YELLOW]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]], bool)
    truth = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], bool)
    # weights: n_valid = 3 in frames 0 and 1, so kept means weight >= 1/3
    attention = np.array([[0.5, 0.2, 0.3, 0.9], [0.34, 0.33, 0.33, 0.0], [0.25, 0.25, 0.25, 0.25]])
    counts = kept_card_boxes([Event(0, "Yellow card"), Event(2, "Goal")], attention, cls, mask, truth,
                             frames_after=1)
    # frame 0: true yellow slot 0 kept; false yellow slot 1 dropped (slot 3 is red and padded)
    # frame 1: false yellow slot 0 kept (0.34), true yellow slot 2 dropped (0.33 < 1/3)
    assert counts == KeptShare(true_kept=1, true_total=2, false_kept=1, false_total=2)
    assert counts.true_share == 0.5 and counts.to_json()["false_card_kept"] == 0.5


def test_kept_card_boxes_without_card_events_or_past_the_end():
    cls = np.full((2, 2), RED)
    mask = np.ones((2, 2), bool)
    attention = np.full((2, 2), 0.5)
    assert kept_card_boxes([Event(0, "Goal")], attention, cls, mask, mask).true_total == 0
    counts = kept_card_boxes([Event(1, "Red card")], attention, cls, mask, mask, frames_after=5)
    assert counts == KeptShare(2, 2, 0, 0)  # only frame 1 exists
    assert KeptShare().true_share is None


def test_simulated_detector_flags_exactly_the_rendered_objects():
    rng = np.random.default_rng(0)
    W, H = 64, 36
    crowd = np.full((H, W), -1, np.int64)
    from uglspot.synth import draw

    crowd[:4, :] = draw.CROWD_YELLOW  # specks for card false positives
    boxes = np.array([[10, 10, 12, 12], [30, 20, 40, 34]], float)
    rendered = RenderedFrame(np.zeros((H, W, 3), np.uint8), boxes, np.array([YELLOW, ENTITY_VOCABULARY.index("referee")]),
                             crowd)
    cfg = DetectorSimConfig(recall={name: 1.0 for name in ENTITY_VOCABULARY}, crowd_false_positives=4.0,
                            other_false_positives=2.0, feat_dim=8)
    found = {True: 0, False: 0}
    for _ in range(50):
        out = simulate_detections(rendered, cfg, rng, np.eye(len(ENTITY_VOCABULARY) + 1, 8))
        assert out["truth"].sum() == 2  # recall 1: both objects, and nothing else, are true
        true_classes = sorted(out["cls"][out["truth"]].tolist())
        assert true_classes == sorted([YELLOW, ENTITY_VOCABULARY.index("referee")])
        for flag in (True, False):
            found[flag] += int((out["truth"] == flag).sum())
    assert found[False] > 0  # false positives were drawn and flagged


@pytest.mark.parametrize("with_truth", [True, False])
def test_store_keeps_the_truth_flag_in_window_order(tmp_path, with_truth):
    from uglspot.entities.store import StoreKey

    key = StoreKey(video="v", detector="synthetic", model="m", prompt=tuple(ENTITY_VOCABULARY), box_threshold=0.0,
                   text_threshold=0.0, max_per_frame=50, fps=8.0, size=None)
    detections = [
        {"boxes": np.zeros((3, 4)), "cls": np.array([RED, YELLOW, 0]), "score": np.array([0.2, 0.9, 0.5]),
         "truth": np.array([True, False, True])},
        {"boxes": np.zeros((0, 4)), "cls": np.zeros(0, int), "score": np.zeros(0), "truth": np.zeros(0, bool)},
    ]
    if not with_truth:
        for d in detections:
            del d["truth"]
    path = EntityStore.write(tmp_path / "v.entities.safetensors", key, 3, detections)
    store = EntityStore.open(path)
    truth = store.truth_window(-1, 4, slots=2)
    if not with_truth:
        assert truth is None
        return
    window = store.window(-1, 4, slots=2)
    # frame 0 sorted by score: yellow 0.9 (false), class 0 0.5 (true); red 0.2 is past 2 slots
    assert window["cls"][1].tolist() == [YELLOW, 0]
    assert truth.tolist() == [[False, False], [False, True], [False, False], [False, False]]


def test_synth_command_sets_the_split_counts(tmp_path, capsys):
    import json

    from uglspot.cli import main

    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--splits", "2,0,1", "--minutes", "0.1", "--width", "64",
                 "--height", "36", "--workers", "1"]) == 0
    assert json.loads((out / "dataset.json").read_text())["counts"] == {"train": 2, "val": 0, "test": 1}
    assert [len(json.loads((out / f"{s}.json").read_text())) for s in ("train", "val", "test")] == [2, 0, 1]


@pytest.mark.parametrize("splits", ["2,1", "a,b,c", "0,1,1", "2,1,0", "2,-1,1"])
def test_synth_command_refuses_bad_split_counts(tmp_path, capsys, splits):
    from uglspot.cli import main

    assert main(["synth", "--out", str(tmp_path / "d"), "--splits", splits]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--splits" in err[0] and "TRAIN,VAL,TEST" in err[0]
    assert not (tmp_path / "d").exists()
