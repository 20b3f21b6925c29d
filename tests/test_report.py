"""uglspot report: inputs, curves, and the page as a browser shows it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from _report_helpers import CLASSES, EVIL, headless_chrome, make_run
from uglspot.cli import main
from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.errors import UserError
from uglspot.report import build_report, load_inputs
from uglspot.report.curves import pr_curve


def _truth(*frames: int) -> list[Video]:
    return [Video("v", 100, 10.0, [Event(f, "A") for f in frames])]


def _preds(*pairs: tuple[int, float]) -> list[VideoPredictions]:
    return [VideoPredictions("v", [Event(f, "A", score=s) for f, s in pairs])]


@pytest.mark.parametrize("gt, preds, tolerance, precision, recall, ap", [
    # one hit then one miss: AP = 1/1 at the hit, divided by 1 truth
    ((10,), ((10, 0.9), (50, 0.5)), 0, [1.0, 0.5], [1.0, 1.0], 1.0),
    # a miss ranked first: precision 1/2 at the hit
    ((10,), ((50, 0.9), (11, 0.5)), 1, [0.0, 0.5], [0.0, 1.0], 0.5),
    # outside the tolerance: nothing found
    ((10,), ((12, 0.9),), 1, [0.0], [0.0], 0.0),
    # two truths, one prediction each; the second is 2 away: only at δ >= 2
    ((10, 20), ((10, 0.9), (22, 0.8)), 2, [1.0, 1.0], [0.5, 1.0], 1.0),
    ((10, 20), ((10, 0.9), (22, 0.8)), 1, [1.0, 0.5], [0.5, 0.5], 0.5),
    # a duplicate on the same truth is a false positive; monotone from the right
    ((10, 20), ((10, 0.9), (10, 0.8), (20, 0.7)), 0, [1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0], (1 + 2 / 3) / 2),
    # no predictions
    ((10,), (), 0, [], [], 0.0),
])
def test_pr_curve_hand_computed(gt, preds, tolerance, precision, recall, ap):
    curve = pr_curve(_truth(*gt), _preds(*preds), "A", tolerance)
    np.testing.assert_allclose(curve.precision, precision)
    np.testing.assert_allclose(curve.recall, recall)
    assert curve.average_precision == pytest.approx(ap)


def test_pr_curve_ap_agrees_with_frame_map_on_random_cases():
    from uglspot.metrics.spotting import frame_map

    rng = np.random.default_rng(1)
    for _ in range(30):
        truth = [Video(f"v{k}", 200, 10.0, sorted([Event(int(f), str(rng.choice(["A", "B"])))
                                                   for f in rng.integers(0, 200, rng.integers(0, 8))],
                                                  key=lambda e: e.frame)) for k in range(3)]
        preds = [VideoPredictions(f"v{k}", [Event(int(f), str(rng.choice(["A", "B"])),
                                                  score=float(np.round(rng.random(), 1)))
                                            for f in rng.integers(0, 200, rng.integers(0, 12))]) for k in range(3)]
        result = frame_map(truth, preds, ["A", "B"], (0, 1, 4))
        for tolerance in (0, 1, 4):
            for label in ("A", "B"):
                assert pr_curve(truth, preds, label, tolerance).average_precision == pytest.approx(
                    result.per_class[tolerance][label])


def test_inputs_layout_and_summary(tmp_path):
    run = make_run(tmp_path / "run", with_videos=False)
    inputs = load_inputs(run)
    assert list(inputs.variants) == ["e2e_tiny", "ugl_tiny"]
    assert inputs.classes == CLASSES
    assert [v.video for v in inputs.variants["ugl_tiny"]] == ["test_000", "test_001"]
    assert inputs.videos == {}
    document, summary = build_report(inputs, tolerances=(0, 1))
    # Every event has a prediction on its frame scored above the one 7 frames late: AP 1 at δ=0.
    assert summary["ugl_tiny"]["mAP"]["0"] == pytest.approx(1.0)
    assert "<script>" not in document
    assert html_escaped(EVIL) in document
    assert document.count('class="gallery-item"') == 2 * len(CLASSES)
    assert document.count("video not found") == 2 * len(CLASSES)  # no videos in this run


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_predictions_folder_alone_gives_timelines_without_a_table(tmp_path):
    run = make_run(tmp_path / "run", with_videos=False)
    inputs = load_inputs(run / "predictions" / "e2e_tiny")
    assert list(inputs.variants) == ["e2e_tiny"] and inputs.truth is None
    document, summary = build_report(inputs)
    assert summary == {} and 'id="ap-table"' not in document
    assert document.count('class="timeline"') == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(events="x"), "'events' should be a list"),
    (lambda d: d["events"][1].update(frame=1.5), "event #1: key 'frame' should be int"),
    (lambda d: d["events"][0].update(score="high"), "event #0: key 'score' should be int or float"),
    (lambda d: d["events"][0]["entities"][0].update(box=[0, 1]), "entity #0: 'box'"),
    (lambda d: d.update(video="not_in_truth"), "not in the ground truth"),
    (lambda d: d["events"][0].update(label="Penalty"), "label 'Penalty' is not in the class list"),
])
def test_bad_events_file_names_file_and_event(tmp_path, mutate, message):
    run = make_run(tmp_path / "run", with_videos=False)
    path = run / "predictions" / "ugl_tiny" / "test_000" / "events.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=re.escape(message)) as info:
        load_inputs(run)
    assert "events.json" in str(info.value)


def test_cli_errors_are_one_line_and_inputs_survive(tmp_path, capsys):
    run = make_run(tmp_path / "run", with_videos=False)
    truth = run / "dataset" / "test.json"
    before = truth.read_bytes()
    assert main(["report", str(run), "--out", str(run / "report.txt")]) == 1
    assert main(["report", str(tmp_path / "missing")]) == 1
    (run / "predictions" / "ugl_tiny" / "test_001" / "events.json").write_text("{oops")
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("uglspot report: error:") for line in err)
    assert "events.json:1:2" in err[2]
    assert truth.read_bytes() == before and not (run / "report.html").exists()


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path):
    run = make_run(tmp_path / "run")
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    text = out.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    driver = headless_chrome(tmp_path / "profile")
    try:
        driver.get(out.as_uri())
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#ap-table tr.ap-row'))"
            ".map(r => r.querySelector('td').textContent)")
        assert rows == CLASSES  # the <script> label is shown as text
        assert driver.execute_script("return window.pwned === undefined && document.scripts.length === 0")
        mean = driver.execute_script("return document.querySelector('#ap-table tr.mean').textContent")
        assert mean.startswith("mAP")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.className, i.complete, i.naturalWidth,"
            " i.closest('figure') ? i.closest('figure').className : ''])")
        kinds = [figure for _, _, _, figure in images]
        assert kinds.count("pr") == len(CLASSES)
        assert kinds.count("timeline") == 2
        gallery = [img for img in images if img[3] == "gallery-item"]
        assert len(gallery) == 2 * len(CLASSES)  # ugl_tiny only: e2e_tiny has no attention
        assert all(complete and width > 0 for _, complete, width, _ in images)
        captions = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.gallery-item figcaption')).map(c => c.textContent)")
        assert any(EVIL in c for c in captions) and not any("video not found" in c for c in captions)
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
