"""uglspot report: inputs, curves, and the page as a browser shows it."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from _report_helpers import CLASSES, EVIL, headless_chrome, make_run, png_dpi, png_pixels, png_text
from uglspot.cli import main
from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.errors import UserError
from uglspot.report import build_report, load_inputs
from uglspot.data.events import SpottedEvent
from uglspot.report import plots
from uglspot.report.curves import PRCurve, pr_curve, spotting_threshold


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


@pytest.mark.parametrize("hits, scores, num_truth, most, threshold", [
    # F1 after each cut: 2/3, 1/2, 4/5, 2/3, 4/7: best after the third
    ([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5], 2, 2.0, 0.7),
    # at most as many as the truth: only the first two cuts count
    ([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5], 2, 1.0, 0.9),
    # no cut inside a run of equal scores: after the tie F1 is 2/3; the third event is over the cap
    ([0, 1, 1], [0.9, 0.9, 0.7], 1, 2.0, 0.9),
    # nothing to find: the top score
    ([0, 0], [0.4, 0.2], 0, 2.0, 0.4),
])
def test_spotting_threshold_hand_computed(hits, scores, num_truth, most, threshold):
    curve = PRCurve(np.array(hits, dtype=bool), num_truth)
    assert spotting_threshold(curve, np.array(scores), most) == pytest.approx(threshold)


def _bumps(num_frames: int, centres: dict[int, list[int]], classes: int) -> np.ndarray:
    """(T, K+1) per-frame probabilities: a bump of height 0.8 per (class, centre)."""
    frames = np.arange(num_frames)[:, None]
    probs = np.full((num_frames, classes + 1), 0.02)
    for k, where in centres.items():
        for c in where:
            probs[:, k + 1] = np.maximum(probs[:, k + 1], 0.8 * np.exp(-0.5 * ((frames[:, 0] - c) / 3.0) ** 2))
    return probs


def _spot_timeline(probs: np.ndarray, events: list[SpottedEvent], classes: list[str], tmp_path) -> bytes:
    """The timeline.png `uglspot spot` writes for a video with these scores and events."""
    from uglspot.app.spot import write_timeline
    from uglspot.engine.infer import SpotResult, VideoScores

    path = tmp_path / "timeline.png"
    write_timeline(path, SpotResult("v", 10.0, len(probs), VideoScores(probs, None), events), classes)
    return path.read_bytes()


def test_timeline_score_axis_follows_the_scores(tmp_path):
    """A model scoring 32 times lower draws the same picture; only the printed axis tops change."""
    classes = ["A", "B"]
    probs = _bumps(300, {0: [50, 200], 1: [120]}, len(classes))
    events = [SpottedEvent(50, "A", 0.8), SpottedEvent(200, "A", 0.8), SpottedEvent(120, "B", 0.8)]
    strong = _spot_timeline(probs, events, classes, tmp_path)
    weak = _spot_timeline(probs / 32, [SpottedEvent(e.frame, e.label, e.score / 32) for e in events], classes,
                          tmp_path)
    tops = {name: json.loads(png_text(png)["timeline"])["axis_top"] for name, png in (("strong", strong),
                                                                                      ("weak", weak))}
    assert tops["strong"] == pytest.approx({"A": 0.8, "B": 0.8})
    assert tops["weak"] == pytest.approx({"A": 0.025, "B": 0.025})
    strong_pixels, weak_pixels = png_pixels(strong), png_pixels(weak)
    assert strong_pixels.shape == weak_pixels.shape
    differ = np.any(strong_pixels != weak_pixels, axis=-1)
    assert 0 < differ.mean() < 0.005  # the tick labels, nothing else
    grey = np.all(np.abs(weak_pixels.astype(int) - (0xb8, 0xbc, 0xc6)) <= 2, axis=-1)
    assert grey.mean() > 0.01  # the weak model's scores fill their rows


def test_timeline_draws_only_events_above_the_threshold(tmp_path):
    classes = ["A", "B"]
    probs = _bumps(300, {0: [50, 200], 1: [120]}, len(classes))
    events = [SpottedEvent(50, "A", 0.8), SpottedEvent(200, "A", 0.6), SpottedEvent(120, "B", 0.7)]
    below = [SpottedEvent(90, "A", 0.3), SpottedEvent(250, "B", 0.1), SpottedEvent(20, "B", 0.39)]
    above = [SpottedEvent(270, "B", 0.41)]
    base = _spot_timeline(probs, events, classes, tmp_path)  # threshold: half of 0.8
    assert json.loads(png_text(base)["timeline"])["shown"] == {"spotted": 3}
    assert np.array_equal(png_pixels(_spot_timeline(probs, events + below, classes, tmp_path)), png_pixels(base))
    assert not np.array_equal(png_pixels(_spot_timeline(probs, events + above, classes, tmp_path)),
                              png_pixels(base))


def test_report_timeline_thresholds_are_the_spotting_thresholds(tmp_path):
    """With ground truth, each variant's rows show its events above the class's best-F1 cut-off."""
    run = make_run(tmp_path / "run", with_videos=False)
    inputs = load_inputs(run)
    from uglspot.report.html import _curves, timeline_thresholds

    thresholds, rule = timeline_thresholds(inputs, _curves(inputs, (0, 2)), 2)
    assert "F1" in rule
    for name, videos in inputs.variants.items():
        for label in CLASSES:
            # make_run puts one event on each true frame (0.5-0.9) and one 7 frames late (0.05-0.4):
            # the cut-off keeps exactly the ones on time.
            on_time = min(e.score for v in videos for e in v.events if e.label == label and e.score >= 0.5)
            assert [thresholds[name][v.video][label] for v in videos] == [pytest.approx(on_time)] * len(videos)


def test_smallest_font_is_recorded():
    plt = plots._pyplot()
    fig, ax = plt.subplots(dpi=plots.DPI)
    ax.set_title("big", fontsize=12)
    ax.text(0.5, 0.5, "small", fontsize=7)
    ax.tick_params(labelsize=10)
    assert png_text(plots._png(fig))["smallest-font-pt"] == "7"


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


def test_gallery_shows_each_moment_once_and_the_notes_escaped(tmp_path):
    """Two events a frame apart (a peak and its neighbour) and another class
    on the same frame used to fill the gallery with one frame several times:
    the next event of the class takes their place."""
    run = make_run(tmp_path / "run", with_videos=False)
    path = run / "predictions" / "ugl_tiny" / "test_000" / "events.json"
    record = json.loads(path.read_text())
    top = max((e for e in record["events"] if e["label"] == "Throw-in"), key=lambda e: e["score"])
    record["events"] += [dict(top, frame=top["frame"] + 1, score=top["score"] - 0.01),
                         dict(top, label="Yellow card", score=0.99)]
    path.write_text(json.dumps(record))
    inputs = load_inputs(run)
    inputs.notes = ["Smoke test: <b>noise</b>"]
    document, _ = build_report(inputs, tolerances=(0, 1))
    shown = re.findall(r"(test_\d+) · frame (\d+)", document)
    ugl = shown[-2 * len(CLASSES):]
    for i, (video, frame) in enumerate(ugl):
        assert all(not (v == video and abs(int(f) - int(frame)) <= 1) for v, f in ugl[:i]), ugl
    assert len(ugl) == len(set(ugl))
    assert "Smoke test: &lt;b&gt;noise&lt;/b&gt;" in document and "<b>noise</b>" not in document


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
        # Every text in every picture is at least 9 pt as shown: its size in the figure, times the
        # figure's pixels per CSS inch (96), times the shrink the page applies.
        shown = driver.execute_script(
            "return Array.from(document.images).map(i => [i.closest('figure').className, i.src, i.naturalWidth,"
            " i.getBoundingClientRect().width])")
        for kind, src, natural, width in shown:
            png = base64.b64decode(src.split(",", 1)[1])
            points = float(png_text(png)["smallest-font-pt"]) * png_dpi(png) / 96 * width / natural
            assert points >= 9, f"{kind}: smallest text {points:.1f} pt as shown"
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()


def test_the_report_finds_soccernet_halves_as_training_does(tmp_path) -> None:
    """The report had a lookup of its own without the `<game>/1_224p.mkv` rule,
    so SoccerNet halves got no gallery frames."""
    from uglspot.data.inputs import find_video_file
    from uglspot.report.inputs import load_inputs

    videos = tmp_path / "videos"
    half = videos / "england_epl" / "2015-08-08 - Chelsea 2 - 2 Swansea" / "1_224p.mkv"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"")  # found by name; the report decodes it only when it draws
    video_id = "england_epl/2015-08-08 - Chelsea 2 - 2 Swansea/1"
    folder = tmp_path / "pred" / "v" / "half"
    folder.mkdir(parents=True)
    (folder / "events.json").write_text(json.dumps({"video": video_id, "fps": 2.0, "num_frames": 10, "events": []}))
    inputs = load_inputs(tmp_path / "pred", videos=videos)
    assert inputs.videos == {video_id: half} == {video_id: find_video_file(videos, video_id)}


@pytest.mark.parametrize("mutate", [lambda d: d.update(video="not_in_truth"),
                                    lambda d: d["events"][0].update(label="Penalty")])
def test_the_report_and_eval_frames_refuse_predictions_alike(tmp_path, mutate) -> None:
    """One predictions-vs-ground-truth check: the report says what `eval
    frames` says about the same events.json, naming it."""
    from uglspot.app import evaluate_predictions

    run = make_run(tmp_path / "run", with_videos=False)
    variant = run / "predictions" / "ugl_tiny"
    path = variant / "test_000" / "events.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as report:
        load_inputs(run)
    with pytest.raises(UserError) as evaluated:
        evaluate_predictions(run / "dataset" / "test.json", variant)
    said = [str(info.value).split("; check")[0] for info in (report, evaluated)]
    assert said[0].startswith(str(path)) and said[0].replace("the class list", "class.txt") == said[1]


def test_the_demo_table_and_the_report_table_show_the_same_cells(tmp_path) -> None:
    """One AP-table-with-Δ builder (report.ap_table.ap_rows): the demo's text
    table and the HTML report's table give every class the same AP and Δ
    cells, in the same order, for the same predictions."""
    from uglspot.app.demo import TOLERANCES, summary_table
    from uglspot.metrics.spotting import frame_map
    from uglspot.report.html import ap_table

    run = make_run(tmp_path / "run", with_videos=False)
    path = run / "predictions" / "ugl_tiny" / "test_000" / "events.json"
    data = json.loads(path.read_text())
    data["events"] = data["events"][2:]  # the second variant misses the first throw-in: a Δ that is not 0
    path.write_text(json.dumps(data))
    inputs = load_inputs(run)
    results = {name: frame_map(inputs.truth, [v.as_predictions() for v in videos], inputs.classes, TOLERANCES)
               for name, videos in inputs.variants.items()}
    counts = {c: sum(e.label == c for v in inputs.truth for e in v.events) for c in inputs.classes}
    width = len(TOLERANCES) * (len(results) + 1)  # each variant and Δ at each tolerance
    text = [line.split()[-width - 1:] for line in summary_table(inputs.classes, results, counts).splitlines()
            if line.startswith(tuple(inputs.classes) + ("mAP",))]
    html, _ = ap_table(inputs, TOLERANCES)
    rows = re.findall(r'<tr class="(?:ap-row|mean)"[^>]*>(.*?)</tr>', html)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row)[1:] for row in rows]  # events, then the AP cells
    assert len(text) == len(inputs.classes) + 1 and text == cells
    assert cells[0][3] not in ("+0.0", "-0.0", "–")  # Throw-in's Δ at the first tolerance
