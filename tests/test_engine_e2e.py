"""End to end on CPU: tiny model, real tiny videos with labels and entity
stores; train two epochs, get killed, resume, spot, evaluate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("uglspot.model.spotter")
pytest.importorskip("uglspot.entities.store")
pytest.importorskip("uglspot.engine.model_folder")

from _engine_helpers import CLASSES, VOCABULARY, make_dataset, tiny_config  # noqa: E402

from uglspot.cli import main  # noqa: E402
from uglspot.config import dump_yaml  # noqa: E402
from uglspot.engine.state import load_state, resolve  # noqa: E402
from uglspot.engine.train import RunPosition, StopTraining, train  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return make_dataset(tmp_path_factory.mktemp("tiny"))


def steps_csv(run: Path) -> list[tuple[int, float]]:
    with open(run / "steps.csv", newline="") as handle:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(handle)]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve(run / "checkpoints", "last") / "model.safetensors"))


def test_killed_then_resumed_run_matches_an_uninterrupted_one_and_spots(tiny, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    whole = tmp_path / "whole"
    heard: list[tuple[int, str]] = []
    progress = train(tiny_config(tiny, whole), hooks=[lambda p, after: heard.append((p.step, after))])
    assert (progress.epoch, progress.step, progress.bad_total) == (2, 6, 0)  # 48 frames / (2 clips x 8) = 3 steps
    # hooks hear each step once and each epoch's end, and know which
    assert heard == [(1, "step"), (2, "step"), (3, "step"), (3, "epoch"),
                     (4, "step"), (5, "step"), (6, "step"), (6, "epoch")]

    def kill_after_step_5(p: RunPosition, after: str) -> None:
        if p.step == 5:
            raise StopTraining("simulated kill")

    broken = tmp_path / "broken"
    config = tiny_config(tiny, broken, checkpoint_every=2)
    with pytest.raises(StopTraining):
        train(config, hooks=[kill_after_step_5])
    last = resolve(broken / "checkpoints", "last")
    assert load_state(last)["progress"]["step"] == 4  # step 5 was lost with the kill
    (broken / "checkpoints" / "last-e0009-s00000099").mkdir()  # a half-written checkpoint the kill left
    with pytest.raises(Exception, match="already holds a training run"):
        train(config)
    resumed = train(config, resume=True)
    assert resumed.step == 6
    assert not (broken / "checkpoints" / "last-e0009-s00000099").exists()

    assert steps_csv(broken) == steps_csv(whole)  # the same loss curve, step by step
    assert [s for s, _ in steps_csv(whole)] == [1, 2, 3, 4, 5, 6]
    first, second = weights(whole), weights(broken)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    with open(whole / "metrics.csv", newline="") as a, open(broken / "metrics.csv", newline="") as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["epoch"] for r in rows_a] == ["1", "2"]  # epochs count from 1, as in the bars and messages
    assert [(r["train_loss"], r["val_metric"]) for r in rows_a] == [(r["train_loss"], r["val_metric"]) for r in rows_b]
    assert 0.0 <= float(rows_a[-1]["val_metric"]) <= 1.0
    assert resolve(whole / "checkpoints", "best") is not None

    # spot: a folder of videos, entities from their stores
    out = tmp_path / "spotted"
    code = main(["spot", str(tiny.videos), "--model", str(whole), "--entities", str(tiny.entities),
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    test_video = tiny.splits["test"][0]
    record = json.loads((out / test_video.video / "events.json").read_text())
    assert (record["video"], record["num_frames"], record["fps"]) == (test_video.video, 40, 10.0)
    assert record["events"], "a threshold of 0.01 keeps candidates even from a barely trained model"
    for event in record["events"]:
        assert set(event) == {"frame", "time", "label", "score", "entities"}
        assert event["label"] in CLASSES and 0 <= event["frame"] < 40
        assert event["time"] == pytest.approx(event["frame"] / 10.0)
        for entity in event["entities"]:
            assert entity["class"] in VOCABULARY and 0 < entity["weight"] <= 1 and len(entity["box"]) == 4
    assert any(event["entities"] for event in record["events"])
    assert (out / test_video.video / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((out / "predictions.json").read_text())) == 6

    # predict + evaluate a labelled split
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(dump_yaml(tiny_config(tiny, whole)))
    code = main(["predict", str(config_path), "--split", "test", "--out", str(tmp_path / "pred"),
                 "--device", "cpu"])
    assert code == 0
    metrics = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    assert metrics["metric"] == "frame_map" and 0.0 <= metrics["value"] <= 1.0
    assert set(metrics["mAP"]) == {"0", "1", "2", "4"}
    # ... with the numbers `eval frames` gives on the same predictions.json
    capsys.readouterr()
    assert main(["eval", "frames", str(tiny.labels / "test.json"), str(tmp_path / "pred" / "predictions.json"),
                 "--json"]) == 0
    official = json.loads(capsys.readouterr().out)
    assert (metrics["mAP"], metrics["per_class"]) == (official["mAP"], official["per_class"])


def test_spot_goes_on_past_a_bad_video_and_lists_it(tiny, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    train(tiny_config(tiny, run, epochs=1, val_every=5, epoch_frames=16))
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "broken.mp4").write_bytes(b"not a video")
    good = tiny.splits["test"][0].video
    (videos / f"{good}.mp4").write_bytes((tiny.videos / f"{good}.mp4").read_bytes())
    code = main(["spot", str(videos), "--model", str(run), "--entities", str(tiny.entities),
                 "--out", str(tmp_path / "out"), "--device", "cpu", "--no-plot"])
    assert code == 1
    err = capsys.readouterr().err
    assert "1 videos failed" in err and "broken.mp4" in err
    assert (tmp_path / "out" / good / "events.json").is_file()


def test_spot_without_entities_for_an_entity_model_says_what_to_pass(tiny, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    train(tiny_config(tiny, run, epochs=1, val_every=5, epoch_frames=16))
    code = main(["spot", str(tiny.videos), "--model", str(run), "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert code == 1
    assert "--entities" in capsys.readouterr().err


def test_twenty_non_finite_losses_in_a_row_stop_the_run_naming_the_videos(tiny, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from uglspot.model import spotter

    monkeypatch.setattr(spotter.UGLSpotter, "loss", lambda self, logits, targets, *_: logits.sum() * float("nan"))
    with pytest.raises(Exception, match=r"3 non-finite losses in a row.*train_\d @ -?\d+"):
        train(tiny_config(tiny, tmp_path / "nan", epochs=2, max_bad_steps=3, val_every=5))
