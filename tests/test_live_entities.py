"""`uglspot spot --live --detector` (issue 24): a model that uses scene
entities spots a stream pushed at real-time pace through a named pipe, each
frame detected as it arrives by a tiny randomly initialised Grounding DINO
(the real transformers class), and gives exactly the events offline `spot
--detector` gives on the same file, with the same attended entities; what
cannot run live is refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from _detector_helpers import make_tiny_grounding_dino
from _engine_helpers import CLASSES, FPS, HEIGHT, render, write_video
from _live_helpers import Pusher, fifo
from uglspot.cli import main
from uglspot.data.labels import Event
from uglspot.engine.model_folder import save_model
from uglspot.entities.store import EntityStore, StoreKey, frame_window
from uglspot.io import write_json_atomic
from uglspot.model.spotter import create_model

PROMPT = ["ball", "player"]
EVENTS = [Event(5, "flash"), Event(14, "red")]
FRAMES = 20


@pytest.fixture(scope="module")
def gdino(tmp_path_factory) -> Path:
    return make_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


def entity_spotter(directory: Path, detector_model: Path, feat_dim: int = 32, **entities) -> Path:
    """A randomly initialised ugl_rny002 reading the tiny Grounding DINO's 32-d RoI features, trained (as its
    inference.json says) on stores of that detector; threshold 0 keeps every NMS survivor."""
    torch.manual_seed(0)
    save_model(create_model("ugl_rny002", len(CLASSES), clip_len=8, entity_slots=4, entity_source="detector",
                            entity_feat_dim=feat_dim, num_entity_classes=len(PROMPT)), directory)
    trained = {"detector": "grounding-dino", "model": str(detector_model), "prompt": PROMPT, "box_threshold": 0.0,
               "text_threshold": 0.0, "max_per_frame": 6, "size": None, "fps": FPS, "features": "roi", **entities}
    write_json_atomic(directory / "inference.json", {
        "dataset": "tiny", "classes": CLASSES, "fps": FPS, "height": HEIGHT, "width": None, "crop": None,
        "clip_len": 8, "pad": 2, "threshold": 0.0, "nms_window": 1, "batch_size": 2, "entities_per_event": 3,
        "entity_slots": 4, "entities": trained, "precision": "off"})
    return directory


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("uglspot spot: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.slow
def test_live_with_a_detector_equals_offline_spot_with_it(gdino, tmp_path: Path, capsys) -> None:
    # the source is twice the model's frame size: the model reads 48x32 frames, the detector the 96x64 ones
    # that offline detection decodes the file at (its input is 64 pixels high), as offline
    video = tmp_path / "match.mp4"
    write_video(video, render(FRAMES, EVENTS, seed=3).repeat(2, axis=1).repeat(2, axis=2))
    model = entity_spotter(tmp_path / "model", gdino)
    assert main(["spot", str(video), "--model", str(model), "--detector", "grounding-dino", "--out",
                 str(tmp_path / "off"), "--device", "cpu", "--no-plot"]) == 0
    offline = json.loads((tmp_path / "off" / "match" / "events.json").read_text())["events"]

    pusher = Pusher(video, fifo(tmp_path / "feed"), realtime=True)
    pusher.start()
    assert main(["spot", "--live", str(tmp_path / "feed"), "--model", str(model), "--detector", "grounding-dino",
                 "--detector-batch-size", "4", "--out", str(tmp_path / "live.jsonl"), "--device", "cpu"]) == 0
    pusher.join(5)
    assert pusher.error is None and pusher.sent == FRAMES
    live = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(offline) > 10 and all(e["entities"] for e in offline)  # threshold 0: every NMS survivor
    assert [(e["frame"], e["label"]) for e in live] == [(e["frame"], e["label"]) for e in offline]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(live, offline)) <= 1e-4
    assert [[(x["class"], x["box"]) for x in e["entities"]] for e in live] == \
        [[(x["class"], x["box"]) for x in e["entities"]] for e in offline]
    assert max(abs(x["weight"] - y["weight"]) for a, b in zip(live, offline)
               for x, y in zip(a["entities"], b["entities"])) <= 1e-3
    assert all(e["entity"] == e["entities"][0] and e["entity"]["class"] in PROMPT for e in live)
    assert all(e["latency"] >= 0 for e in live)
    assert f"live {tmp_path / 'feed'}: {FRAMES} frames" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["no detector", "stores", "simulated", "prompt without detector",
                                  "other vocabulary", "too many names", "other feature width"])
def test_what_live_refuses_for_entity_models(case, gdino, tmp_path: Path, capsys) -> None:
    """One line and exit 1, before any stream is opened (the source does not exist)."""
    trained = {"simulated": {"detector": "synthetic", "features": "simulated", "model": "simulated"},
               "too many names": {"prompt": None}}.get(case, {})  # the latter: stores that recorded no vocabulary
    model = entity_spotter(tmp_path / "model", gdino, 16 if case == "other feature width" else 32, **trained)
    base = ["spot", "--live", str(tmp_path / "feed"), "--model", str(model), "--device", "cpu"]
    extra = {"no detector": [], "stores": ["--entities", str(tmp_path)],
             "simulated": ["--detector", "grounding-dino"], "prompt without detector": ["--prompt", "ball"],
             "other vocabulary": ["--detector", "grounding-dino", "--prompt", "player,ball"],
             "too many names": ["--detector", "grounding-dino", "--prompt", "ball,player,referee"],
             "other feature width": ["--detector", "grounding-dino"]}[case]
    assert main(base + extra) == 1
    line = one_line_error(capsys.readouterr().err)
    expected = {
        "no detector": "this model uses scene entities; with --live they are detected on the frames as they "
                       "arrive: add --detector grounding-dino (the detector of its training stores)",
        "stores": "--entities cannot be used with --live: entity stores belong to recorded videos",
        "simulated": "trained on entities of the simulated detector of `uglspot synth`",
        "prompt without detector": "--detector-model and --prompt set up --detector; add --detector NAME",
        "other vocabulary": "the model was trained on the vocabulary ball,player (in this order)",
        "too many names": "the vocabulary has 3 names (ball, player, referee) but the model embeds 2 entity "
                          "classes (num_entity_classes=2); give at most that many to --prompt",
        "other feature width": f"its roi features are 32 wide but the model reads entity_feat_dim 16; give "
                               f"--detector-model the detector model its training stores came from ({gdino})"}[case]
    assert expected in line, line
    assert not (tmp_path / "feed").exists()


def test_a_frame_goes_to_the_model_as_its_store_gives_it_back(tmp_path: Path) -> None:
    """The entity tensors of a live frame are those of a store the same detections were written to:
    the best slots by score, features rounded to the store's precision."""
    rng = np.random.default_rng(0)
    frames = []
    for n in (0, 3, 7):  # no box, fewer boxes than slots, more
        frames.append({"boxes": rng.random((n, 4), dtype=np.float32), "cls": rng.integers(0, 2, n),
                       "score": rng.random(n, dtype=np.float32), "feat": rng.normal(size=(n, 5)).astype(np.float32)})
    key = StoreKey(video="v", detector="test", model="none", prompt=tuple(PROMPT), box_threshold=0.0,
                   text_threshold=0.0, max_per_frame=8, fps=None, size=None)
    store = EntityStore.open(EntityStore.write(tmp_path / "v.entities.safetensors", key, len(frames), frames))
    for t, detection in enumerate(frames):
        stored, live = store.window(t, 1, slots=4), frame_window(detection, 4, 5)
        assert stored.keys() == live.keys()
        for name in stored:
            assert stored[name].dtype == live[name].dtype and np.array_equal(stored[name], live[name]), (t, name)
    assert not np.array_equal(frame_window(frames[2], 4, 5)["feat"][0, 0], frames[2]["feat"][np.argmax(frames[2]["score"])])


def test_the_live_detection_benchmark_splits_a_frame_into_its_parts() -> None:
    """benchmarks/live_detection.py on the tiny model: the parts of a frame add up to its time."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "live_detection.py"), "--tiny", "--sizes",
                           "default", "--iters", "1", "--frame", "72x128"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.splitlines()[-1])
    parts = {name: values[0] for name, values in line["seconds_sorted"].items()}
    assert line["figure"] == "live_detection_s_per_frame" and line["input"] == [54, 96] and line["boxes"] == 30
    assert parts["forward"] > 0 and abs(parts["preprocess"] + parts["forward"] + parts["postprocess"]
                                       - parts["total"]) <= 0.003
