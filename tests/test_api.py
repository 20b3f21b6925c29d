"""The README's "Python API" examples, run as written: spot a video with a
trained model and read the events back, score them, run the demo. The
model is the tiny run of the fault tests; the demo runs an even smaller
profile under the name the README uses (the quick one takes minutes)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from uglspot.data.labels import Video, write_e2e_labels
from uglspot.entities.store import store_path

README = Path(__file__).resolve().parents[1] / "README.md"


def api_blocks() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_the_spot_and_the_demo_examples() -> None:
    blocks = api_blocks()
    assert len(blocks) == 2 and "spot_files" in blocks[0] and "evaluate_predictions" in blocks[0]
    assert "run_demo" in blocks[1]


def test_the_spot_and_evaluate_example_runs_as_written(faults_dataset, faults_run, tmp_path, monkeypatch,
                                                       capsys) -> None:
    from _engine_helpers import link_copy, write_entities

    source = faults_dataset.splits["test"][0]
    video = Video("match", source.num_frames, source.fps, source.events, source.width, source.height)
    shutil.copyfile(faults_dataset.videos / f"{source.video}.mp4", tmp_path / "match.mp4")
    write_entities(store_path(tmp_path / "stores", "match"), video)
    write_e2e_labels([video], tmp_path / "labels" / "test.json")
    shutil.copyfile(faults_dataset.labels / "class.txt", tmp_path / "labels" / "class.txt")
    run, _ = faults_run
    (tmp_path / "runs").mkdir()
    link_copy(run, tmp_path / "runs" / "my-model")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(api_blocks()[0], namespace)
    printed = capsys.readouterr().out
    spotted, scored = namespace["spotted"], namespace["scored"]
    assert spotted.failures == [] and [p.video for p in spotted.predictions] == ["match"]
    assert (tmp_path / "spotted" / "match" / "events.json").is_file()
    assert sum(len(p.events) for p in spotted.predictions) == printed.count("match ")
    assert scored.videos == 1 and scored.events == len(video.events) and set(scored.result.map) == {1, 2}
    assert "mAP at δ = 1" in printed


@pytest.mark.slow
def test_the_demo_example_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    from uglspot.app import PROFILES

    tiny = replace(PROFILES["quick"], width=64, height=36, matches={"train": 1, "val": 1, "test": 1},
                   minutes={"train": 0.25, "val": 0.25, "test": 0.25}, clip_len=8, batch_size=2, epochs=1,
                   epoch_frames=64, side_by_side=False)
    monkeypatch.setitem(PROFILES, "quick", tiny)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(api_blocks()[1], namespace)
    outcome = namespace["outcome"]
    assert set(outcome.results) == {"e2e_rny002", "ugl_rny002"} and outcome.test_videos == 1
    assert outcome.table in capsys.readouterr().out
    assert (tmp_path / "demo-run" / "summary.json").is_file() and (tmp_path / "demo-run" / "report.html").is_file()
    # each variant's predictions.json holds the predictions its numbers were measured on
    import json

    from uglspot.cli import main

    for variant, result in outcome.results.items():
        predictions = tmp_path / "demo-run" / "predictions" / variant / "predictions.json"
        assert main(["eval", "frames", "demo-run/dataset/test.json", str(predictions), "--tolerances", "1,2",
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == result.to_json()
