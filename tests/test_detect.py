from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _detector_helpers import make_tiny_grounding_dino, make_tiny_owlv2
from _video_helpers import write_index_video
from uglspot.cli import main
from uglspot.entities.backends import create_detector, phrase_token_classes, top_detections
from uglspot.entities.boxes import cxcywh_to_xyxy
from uglspot.entities.detector_settings import DetectorConfig
from uglspot.entities.pipeline import detect_video
from uglspot.entities.store import EntityStore, store_path
from uglspot.errors import UserError

PROMPT = ["ball", "yellow card", "red card", "goal", "referee", "player"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"grounding-dino": make_tiny_grounding_dino(root / "gd"), "owlv2": make_tiny_owlv2(root / "owl")}


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_index_video(tmp_path_factory.mktemp("v") / "match.mp4", 25, fps=25, width=80, height=48)


def test_phrase_token_classes() -> None:
    text = "ball. yellow card. goal."
    #          [CLS]   ball     .       yellow    card      .         goal      .         [SEP]
    offsets = [(0, 0), (0, 4), (4, 5), (6, 12), (13, 17), (17, 18), (19, 23), (23, 24), (0, 0)]
    assert phrase_token_classes(text, ["ball", "yellow card", "goal"], offsets) == [-1, 0, -1, 1, 1, -1, 2, -1, -1]


@pytest.mark.parametrize("scores,threshold,limit,want_index", [
    ([[0.9, 0.1, 0.5, 0.7]], 0.3, 50, [[0, 3, 2]]),
    ([[0.9, 0.1, 0.5, 0.7]], 0.3, 2, [[0, 3]]),
    ([[0.2, 0.1, 0.25, 0.0]], 0.3, 50, [[]]),
    ([[0.4, 0.6], [0.8, 0.35]], 0.5, 50, [[1], [0]]),
])
def test_top_detections_keeps_best_above_threshold(scores, threshold, limit, want_index) -> None:
    scores = torch.tensor(scores)
    B, Q = scores.shape
    classes = torch.arange(Q).repeat(B, 1) % 3
    boxes = torch.rand(B, Q, 4)
    feats = torch.randn(B, Q, 5)
    out = top_detections(scores, classes, boxes, feats, threshold, limit)
    for b, want in enumerate(want_index):
        np.testing.assert_allclose(out[b]["score"], scores[b, want].numpy())
        assert out[b]["cls"].tolist() == classes[b, want].tolist()
        np.testing.assert_allclose(out[b]["boxes"], boxes[b, want].numpy())
        np.testing.assert_allclose(out[b]["feat"], feats[b, want].numpy())


def test_cxcywh_to_xyxy() -> None:
    assert cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.4]])).tolist() == [[pytest.approx(0.4), pytest.approx(0.3),
                                                                            pytest.approx(0.6), pytest.approx(0.7)]]


def test_grounding_dino_postprocess_reads_classes_from_prompt_tokens(tiny_models) -> None:
    det = create_detector(DetectorConfig(model=str(tiny_models["grounding-dino"]), box_threshold=0.5,
                                         text_threshold=0.25, max_per_frame=50, features="query"))
    L, C = det.token_class.shape
    assert C == len(PROMPT)
    Q = 4
    logits = torch.full((1, Q, 32), -10.0)
    # query 0: a token of "red card" fires; query 1: "player"; query 2: nothing; query 3: "ball" weakly
    for q, c, value in [(0, 2, 3.0), (1, 5, 1.0), (3, 0, -0.5)]:
        token = int(det.token_class[:, c].nonzero()[-1])
        logits[0, q, token] = value
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 1, 1], [0.5, 0.5, 0.1, 0.1]]])
    hidden = torch.arange(Q * 32, dtype=torch.float).view(1, Q, 32)
    out = det.postprocess(SimpleNamespace(logits=logits, pred_boxes=boxes, last_hidden_state=hidden))[0]
    assert out["cls"].tolist() == [2, 5]
    np.testing.assert_allclose(out["score"], torch.sigmoid(torch.tensor([3.0, 1.0])).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out["boxes"], [[0.4, 0.4, 0.6, 0.6], [0.0, 0.0, 0.3, 0.3]], atol=1e-6)
    np.testing.assert_allclose(out["feat"], hidden[0, [0, 1]].numpy())


def test_owlv2_postprocess_undoes_square_padding(tiny_models) -> None:
    det = create_detector(DetectorConfig(name="owlv2", model=str(tiny_models["owlv2"]), box_threshold=0.5,
                                         features="query"))
    logits = torch.tensor([[[-5.0, 2.0, -5, -5, -5, -5], [-5.0] * 6]])
    # a box in the padded square of a 100x50 (WxH) frame: x in [0.2,0.6], y in [0.1,0.4] of the square
    boxes = torch.tensor([[[0.4, 0.25, 0.4, 0.3], [0.5, 0.5, 0.1, 0.1]]])
    embeds = torch.randn(1, 2, 32)
    out = det.postprocess(SimpleNamespace(logits=logits, pred_boxes=boxes, class_embeds=embeds), (50, 100))[0]
    assert out["cls"].tolist() == [1]
    np.testing.assert_allclose(out["boxes"], [[0.2, 0.2, 0.6, 0.8]], atol=1e-6)
    np.testing.assert_allclose(out["feat"], embeds[0, :1].numpy())


@pytest.mark.parametrize("features", ["roi", "query"])
@pytest.mark.parametrize("name", ["grounding-dino", "owlv2"])
def test_tiny_model_whole_path_and_batching(tiny_models, name, features) -> None:
    config = DetectorConfig(name=name, model=str(tiny_models[name]), box_threshold=0.0, max_per_frame=7,
                            features=features)
    det = create_detector(config)
    torch.manual_seed(1)
    frames = torch.randint(0, 256, (3, 3, 48, 80), dtype=torch.uint8)
    batched = det.detect(frames)
    assert len(batched) == 3
    for b, out in enumerate(batched):
        n = len(out["score"])
        assert 0 < n <= 7
        assert out["boxes"].shape == (n, 4) and out["feat"].shape == (n, det.feat_dim) and out["cls"].shape == (n,)
        assert (out["boxes"] >= 0).all() and (out["boxes"] <= 1).all()
        assert (out["cls"] >= 0).all() and (out["cls"] < len(PROMPT)).all()
        assert (np.diff(out["score"]) <= 1e-6).all()
        single = det.detect(frames[b:b + 1])[0]
        np.testing.assert_allclose(single["boxes"], out["boxes"], atol=1e-4)
        np.testing.assert_allclose(single["feat"], out["feat"], atol=1e-3, rtol=1e-3)


def test_detect_video_gives_one_entry_per_target_frame(tiny_models, video) -> None:
    det = create_detector(DetectorConfig(model=str(tiny_models["grounding-dino"]), box_threshold=0.0,
                                         max_per_frame=3))
    seen = []
    num_frames, detections, damage = detect_video(det, video, fps=10, batch_size=2, progress=seen.append)
    assert damage is None and num_frames == len(detections) == 10 and sum(seen) == 10


def test_offline_hub_model_says_how_to_fetch_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserError, match="hf download IDEA-Research/grounding-dino-tiny") as caught:
        create_detector(DetectorConfig())
    assert "--model DIR" in str(caught.value)
    with pytest.raises(UserError, match="model directory not found"):
        create_detector(DetectorConfig(model=str(tmp_path / "nowhere")))


def test_detect_command_resumes_and_lists_failures(tiny_models, video, tmp_path, capsys) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 30)
    out = tmp_path / "stores"
    args = ["detect", str(video), "--model", str(tiny_models["grounding-dino"]), "--fps", "5",
            "--out", str(out), "--prompt", "ball, goal", "--box-threshold", "0.1", "--batch-size", "3"]
    assert main(args[:2] + [str(junk)] + args[2:]) == 1
    err = capsys.readouterr().err
    assert "1 video(s) failed" in err and "junk.mp4: not a readable video" in err
    path = store_path(out, "match")
    store = EntityStore.open(path)
    assert store.vocabulary == ["ball", "goal"] and store.num_frames == 5 and store.feat_dim == 32
    assert store.key.source_bytes == video.stat().st_size
    stamp = path.stat().st_mtime_ns
    assert main(args) == 0 and "already done" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == stamp
    assert main(args[:-2] + ["--box-threshold", "0.2"]) == 0  # another key: redone
    assert EntityStore.open(path).key.box_threshold == 0.2


def test_detect_keeps_frames_before_damage(tiny_models, tmp_path, capsys) -> None:
    good = write_index_video(tmp_path / "good.mp4", 100, options={"movflags": "faststart"})
    data = good.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "stores"
    code = main(["detect", str(bad), "--model", str(tiny_models["grounding-dino"]), "--fps", "5",
                 "--out", str(out), "--box-threshold", "0.0", "--max-per-frame", "2"])
    assert code == 1 and "last good target frame" in capsys.readouterr().err
    store = EntityStore.open(store_path(out, "cut"))
    filled = store.window(0, store.num_frames)["mask"].any(axis=1)
    assert store.num_frames == 20 and 0 < filled.sum() < 20 and filled[:filled.sum()].all()
    assert store.header["extra"]["damage"]


def test_config_file_sets_prompt_and_thresholds(tiny_models, video, tmp_path, capsys) -> None:
    config = tmp_path / "soccer.yaml"
    config.write_text(f"detector:\n  model: {tiny_models['owlv2']}\n  name: owlv2\n  prompt: [ball, referee]\n"
                      "  box_threshold: 0.0\n  max_per_frame: 4\n")
    out = tmp_path / "stores"
    assert main(["detect", str(video), "--config", str(config), "--fps", "2", "--out", str(out)]) == 0
    store = EntityStore.open(store_path(out, "match"))
    assert store.key.detector == "owlv2" and store.vocabulary == ["ball", "referee"]
    assert store.window(0, 1)["mask"].sum() == 4
    config.write_text("detector:\n  prompt: [ball]\n  colour: red\n")
    assert main(["detect", str(video), "--config", str(config), "--fps", "2", "--out", str(out)]) == 1
    assert "unknown key(s) colour" in capsys.readouterr().err


def _glip_files(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rows = torch.tensor([[0, 1, 0.1, 0.1, 0.3, 0.3] + [float(i)] * 256, [3, 2, 0.5, 0.5, 0.6, 0.6] + [0.0] * 256])
        paths.append(directory / f"half{i}.pt")
        torch.save(rows, paths[-1])
    return paths


def test_glip_import_through_the_command(tmp_path) -> None:
    files = _glip_files(tmp_path / "glip", 2)
    out = tmp_path / "stores"
    assert main(["detect", *map(str, files), "--detector", "glip-import", "--fps", "2", "--out", str(out)]) == 0
    store = EntityStore.open(store_path(out, "half1"))
    assert store.num_frames == 4 and store.key.detector == "glip-import"
    assert store.window(0, 1)["feat"][0, 0, 0] == 1.0 and store.window(3, 1)["cls"][0, 0] == 1


def test_a_failed_glip_import_is_counted_once(tmp_path, capsys) -> None:
    """A bad file once made the summary say `-1 video(s) already done`."""
    files = _glip_files(tmp_path / "glip", 2)
    files[1].write_bytes(b"not a torch file")
    out = tmp_path / "stores"
    assert main(["detect", *map(str, files), "--detector", "glip-import", "--fps", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(files[1]) in err and "already done" not in err, err
    assert main(["detect", *map(str, files), "--detector", "glip-import", "--fps", "2", "--out", str(out)]) == 1
    assert "1 video(s) already done" in capsys.readouterr().err  # the good one, from the first run


@pytest.mark.parametrize("fps", ["nan", "inf", "0", "1e12"])
def test_a_glip_import_at_a_rate_that_is_not_one_is_refused(tmp_path, capsys, fps) -> None:
    """`--fps nan` once wrote a store with fps NaN."""
    files = _glip_files(tmp_path / "glip", 1)
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", *map(str, files), "--detector", "glip-import", "--fps", fps, "--out", str(tmp_path / "s")])
    assert exit_info.value.code == 2 and "--fps" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_torchrun_splits_videos_across_two_ranks(tmp_path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside the interpreter")
    files = _glip_files(tmp_path / "glip", 4)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(p.name for p in files) + "\nmissing.pt\n")
    (tmp_path / "glip" / "list.txt").write_text(listing.read_text())
    out = tmp_path / "stores"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1")
    result = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--master-port", "29517", "-m", "uglspot",
                             "detect", str(tmp_path / "glip" / "list.txt"), "--detector", "glip-import",
                             "--fps", "2", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0  # rank 0 got missing.pt (the 5th item)
    assert "rank 0/2" in result.stderr and "missing.pt: no such file" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"half{i}.entities.safetensors" for i in range(4)]


@pytest.mark.parametrize("config", [
    DetectorConfig(),
    DetectorConfig(name="owlv2", prompt=["ball", "red card"], box_threshold=0.2, max_per_frame=20, features="query"),
    DetectorConfig(model="some/dino", image_size=(400, 700), text_threshold=0.3),
])
def test_a_store_key_gives_back_the_config_that_made_it(tmp_path, config) -> None:
    """One mapping between detector settings and store keys, both ways: spot
    --detector rebuilds the training stores' settings from their key."""
    from uglspot.entities.pipeline import config_for_stores, store_key

    source = tmp_path / "v.mp4"
    source.write_bytes(b"x")
    key = store_key(config, "v", source, 2.0).to_json()
    assert config_for_stores(key, config.name) == config
    other = "owlv2" if config.name != "owlv2" else "grounding-dino"
    moved = config_for_stores(key, other)  # another backend keeps the vocabulary and the feature kind only
    assert (moved.name, moved.prompt, moved.features, moved.model) == (other, config.prompt, config.features, None)


def test_every_store_key_field_says_either_how_entities_were_detected_or_which_video() -> None:
    import dataclasses

    from uglspot.entities.store import DETECTION_FIELDS, VIDEO_FIELDS, StoreKey

    assert sorted(f.name for f in dataclasses.fields(StoreKey)) == sorted(DETECTION_FIELDS + VIDEO_FIELDS)


@pytest.mark.parametrize("config", [
    DetectorConfig(),
    DetectorConfig(name="owlv2", prompt=["ball", "red card"], box_threshold=0.2, max_per_frame=20, features="query"),
    DetectorConfig(model="some/dino", image_size=(400, 700), text_threshold=0.3),
])
def test_the_detection_settings_a_model_keeps_from_its_stores_give_back_their_detector(tmp_path, config) -> None:
    """spot --detector's path, end to end: the store checks return the
    stores' detection settings (kept in the model's inference.json as JSON),
    and config_for_stores makes the same detector from them."""
    import json

    from uglspot.engine.store_checks import entity_store_problems
    from uglspot.entities.pipeline import config_for_stores, store_key

    source = tmp_path / "v.mp4"
    source.write_bytes(b"x")
    EntityStore.write(store_path(tmp_path / "stores", "v"), store_key(config, "v", source, 2.0), 3, [])
    model = SimpleNamespace(entity_source="backbone", num_entity_classes=0, entity_feat_dim=None)
    problems, settings = entity_store_problems(tmp_path / "stores", [("v", 3)], model)
    assert not problems and settings["fps"] == 2.0
    assert config_for_stores(json.loads(json.dumps(settings)), config.name) == config
