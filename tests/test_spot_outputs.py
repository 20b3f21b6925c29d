"""What `uglspot spot` leaves in its output folder connects (issue 22): each
video id's folder is written down in index.json, a rerun without plots
removes the timeline it no longer matches, and `eval frames` scores the
folder as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _engine_helpers import CLASSES, FPS, render, saved_global_model, write_video
from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.cli import main
from uglspot.data.labels import Event, Video, write_e2e_labels
from uglspot.io import write_json_atomic, write_text_atomic


def test_spot_writes_where_each_video_went_and_a_rerun_without_plots_drops_the_old_timeline(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    events = [Event(5, "flash"), Event(11, "red")]
    write_video(tmp_path / "long dir" / "ten minutes.mp4", render(16, events, seed=3))
    model, out = saved_global_model(tmp_path / "model"), tmp_path / "spotted"
    argv = ["spot", str(tmp_path / "long dir"), "--model", str(model), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    folder = out / "ten_minutes"
    assert (folder / "timeline.png").is_file()
    assert json.loads((out / "index.json").read_text()) == [
        {"video": "ten minutes", "folder": "ten_minutes", "file": str(tmp_path / "long dir" / "ten minutes.mp4")}]
    assert [p["video"] for p in json.loads((out / "predictions.json").read_text())] == ["ten minutes"]

    capsys.readouterr()
    assert main(argv + ["--no-plot"]) == 0
    err = capsys.readouterr().err
    assert not (folder / "timeline.png").exists() and (folder / "events.json").is_file()
    assert f"removed 1 timeline.png file(s) an earlier run left in {out} (--no-plot)" in err

    # the folder scores as its predictions
    write_text_atomic(tmp_path / "labels" / "class.txt", "\n".join(CLASSES) + "\n")
    write_e2e_labels([Video("ten minutes", 16, float(FPS), events)], tmp_path / "labels" / "test.json")
    assert main(["eval", "frames", str(tmp_path / "labels" / "test.json"), str(out), "--json"]) == 0
    from_folder = capsys.readouterr().out
    assert main(["eval", "frames", str(tmp_path / "labels" / "test.json"), str(out / "predictions.json"),
                 "--json"]) == 0
    assert capsys.readouterr().out == from_folder


def test_spot_keeps_events_at_the_validation_thresholds_unless_told_and_says_which(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_video(tmp_path / "videos" / "clip.mp4", render(16, [Event(5, "flash")], seed=3))
    model = saved_global_model(tmp_path / "model")
    argv = ["spot", str(tmp_path / "videos"), "--model", str(model), "--device", "cpu"]

    def spotted(out: str, *options: str) -> tuple[list[dict], str]:
        capsys.readouterr()
        assert main(argv + ["--out", str(tmp_path / out), *options]) == 0
        return json.loads((tmp_path / out / "clip" / "events.json").read_text())["events"], capsys.readouterr().err

    candidates, err = spotted("no-thresholds", "--no-plot")
    assert ("threshold: 0 for every class, the model's candidate threshold (its run chose no per-class thresholds "
            "at validation); pass --threshold to keep fewer events") in err
    scores = {c: sorted(e["score"] for e in candidates if e["label"] == c) for c in CLASSES}
    assert all(scores.values()), "a random model's candidates at threshold 0 include both classes"
    # thresholds as validation stores them: flash halfway up its scores (events.json rounds them), red kept whole
    settings = json.loads((model / "inference.json").read_text())
    middle = len(scores["flash"]) // 2
    flash = (scores["flash"][middle - 1] + scores["flash"][middle]) / 2
    write_json_atomic(model / "inference.json", {**settings, "class_thresholds": {"flash": flash},
                                                 "threshold_tolerance": 1})
    events, err = spotted("default", "--no-plot")
    assert (f"thresholds per class, the best F1 on the validation videos at ±1 frame(s): flash {flash:.2g}; "
            "red 0 (no validation events); --threshold overrides") in err
    assert events == [e for e in candidates if e["label"] == "red" or e["score"] >= flash]
    assert 0 < sum(e["label"] == "flash" for e in events) < len(scores["flash"])
    events, err = spotted("override", "--no-plot", "--threshold", "0")
    assert "threshold: 0 for every class (--threshold)" in err and events == candidates
