"""`uglspot spot --detector`: detection and spotting in one command, with the
same per-video detection code as `uglspot detect`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _detector_helpers import make_tiny_grounding_dino
from _engine_helpers import CLASSES, FPS, HEIGHT, render, write_video
from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.cli import main
from uglspot.data.labels import Event
from uglspot.engine.model_folder import save_model
from uglspot.entities.store import EntityStore, store_path
from uglspot.io import write_json_atomic
from uglspot.model.spotter import create_model

PROMPT = ["ball", "player"]


@pytest.fixture(scope="module")
def gdino(tmp_path_factory) -> Path:
    return make_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


def tiny_spotter(directory: Path, detector_model: Path | None, num_entity_classes: int = len(PROMPT)) -> Path:
    """A randomly initialised ugl_rny002 reading 32-d detector features (the
    tiny Grounding DINO's width), saved as `uglspot train` saves checkpoints."""
    torch.manual_seed(0)
    model = create_model("ugl_rny002", len(CLASSES), clip_len=8, entity_slots=4, entity_source="detector",
                         entity_feat_dim=32, num_entity_classes=num_entity_classes)
    save_model(model, directory)
    entities = None if detector_model is None else {
        "detector": "grounding-dino", "model": str(detector_model), "prompt": PROMPT, "box_threshold": 0.0,
        "text_threshold": 0.0, "max_per_frame": 4, "size": None, "fps": FPS}
    write_json_atomic(directory / "inference.json", {
        "dataset": "tiny", "classes": CLASSES, "fps": FPS, "height": HEIGHT, "width": None, "crop": None,
        "clip_len": 8, "pad": 2, "threshold": 0.0, "nms_window": 1, "batch_size": 2, "entities_per_event": 3,
        "entity_slots": 4, "entities": entities})
    return directory


@pytest.fixture()
def video(tmp_path) -> Path:
    path = tmp_path / "videos" / "clip.mp4"
    write_video(path, render(16, [Event(5, "flash")], seed=3))
    return path


def test_spot_detects_entities_once_and_reports_them(gdino, video, tmp_path, capsys) -> None:
    model = tiny_spotter(tmp_path / "model", gdino)
    out = tmp_path / "out"
    args = ["spot", str(video.parent), "--model", str(model), "--detector", "grounding-dino",
            "--detector-model", str(gdino), "--out", str(out), "--device", "cpu", "--no-plot"]
    assert main(args) == 0
    store = EntityStore.open(store_path(out / "entities", "clip"))
    assert store.vocabulary == PROMPT and store.num_frames == 16 and store.feat_dim == 32
    assert store.key.fps == FPS and store.key.box_threshold == 0.0  # the training stores' settings
    events = json.loads((out / "clip" / "events.json").read_text())
    assert events["num_frames"] == 16 and events["events"]
    entities = [e for event in events["events"] for e in event["entities"]]
    assert entities and {e["class"] for e in entities} <= set(PROMPT)
    assert all(len(e["box"]) == 4 and 0 <= min(e["box"]) <= max(e["box"]) <= 1 and e["weight"] > 0
               for e in entities)

    mtime = store.path.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # the second run reuses the store
    assert store.path.stat().st_mtime_ns == mtime
    assert "reused" in capsys.readouterr().err


def test_spot_refuses_a_vocabulary_the_model_cannot_embed(gdino, video, tmp_path, capsys) -> None:
    model = tiny_spotter(tmp_path / "model", None, num_entity_classes=2)
    code = main(["spot", str(video), "--model", str(model), "--detector", "grounding-dino",
                 "--detector-model", str(gdino), "--prompt", "ball,player,referee", "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--no-plot"])
    err = capsys.readouterr().err
    assert code == 1 and "num_entity_classes=3" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "clip" / "events.json").exists()


def test_spot_lists_videos_without_a_store_and_spots_the_others(gdino, video, tmp_path, capsys) -> None:
    model = tiny_spotter(tmp_path / "model", gdino)
    other = video.parent / "other.mp4"
    write_video(other, render(12, [], seed=4))
    stores = tmp_path / "stores"
    assert main(["detect", str(video), "--model", str(gdino), "--prompt", ",".join(PROMPT), "--fps", str(FPS),
                 "--box-threshold", "0", "--out", str(stores)]) == 0
    code = main(["spot", "--model", str(model), str(video.parent), "--entities", str(stores),
                 "--out", str(tmp_path / "o"), "--device", "cpu", "--no-plot"])
    err = capsys.readouterr().err
    assert code == 1 and "other.mp4" in err and "uglspot detect" in err
    assert (tmp_path / "o" / "clip" / "events.json").is_file()
    assert not (tmp_path / "o" / "other").exists()
    assert np.isfinite(json.loads((tmp_path / "o" / "clip" / "events.json").read_text())["events"][0]["score"])
