"""Entity feature kinds: ``roi`` (RoIAlign on the detector's visual map, the
paper's) and ``query`` (the model's per-box embedding), checked against
torchvision's RoIAlign on maps caught independently from the real
transformers models, and kept apart in stores and trained models."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from _detector_helpers import make_tiny_grounding_dino, make_tiny_owlv2
from _video_helpers import write_index_video
from uglspot.cli import main
from uglspot.entities.backends import create_detector
from uglspot.entities.boxes import fpn_levels, map_stride
from uglspot.entities.detector_settings import DetectorConfig
from uglspot.entities.store import EntityStore, StoreKey, store_path
from uglspot.errors import UserError


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"grounding-dino": make_tiny_grounding_dino(root / "gd"), "owlv2": make_tiny_owlv2(root / "owl")}


def pooled_by_hand(fmap: torch.Tensor, image: int, box_px: np.ndarray, stride: int) -> np.ndarray:
    """torchvision RoIAlign of one box (input pixels) on one (B, C, h, w) map,
    7x7 bins, 2 samples a bin side, pixel-aligned, averaged over the bins."""
    rois = torch.tensor([[image, *box_px.tolist()]], dtype=torch.float32)
    out = roi_align(fmap.float(), rois, 7, spatial_scale=1.0 / stride, sampling_ratio=2, aligned=True)
    return out.mean(dim=(2, 3))[0].numpy()


def fpn_level_by_hand(box_px: np.ndarray, lowest: int, highest: int) -> int:
    side = math.sqrt(max(box_px[2] - box_px[0], 0) * max(box_px[3] - box_px[1], 0))
    return min(max(math.floor(4 + math.log2(max(side, 1e-6) / 224)), lowest), highest)


def test_grounding_dino_roi_feature_is_roi_align_on_the_hooked_projected_level(tiny_models) -> None:
    # a 448x672 input puts boxes of the frame on Swin levels of stride 8, 16 and 32
    det = create_detector(DetectorConfig(model=str(tiny_models["grounding-dino"]), box_threshold=0.0,
                                         text_threshold=0.0, max_per_frame=30, image_size=(448, 800)))
    assert det.features == "roi" and det.feat_dim == det.model.config.d_model
    caught: dict[int, torch.Tensor] = {}
    projections = det.model.model.input_proj_vision  # conv 1x1 + GroupNorm per Swin level
    hooks = [m.register_forward_hook(lambda _m, _i, out, i=i: caught.__setitem__(i, out.detach().clone()))
             for i, m in enumerate(projections)]
    torch.manual_seed(3)
    frames = torch.randint(0, 256, (2, 3, 120, 180), dtype=torch.uint8)
    try:
        detections = det.detect(frames)
    finally:
        for hook in hooks:
            hook.remove()
    H, W = 448, 672
    maps = [caught[i] for i in range(len(projections))]
    assert [tuple(m.shape[-2:]) for m in maps] == [(56, 84), (28, 42), (14, 21)]
    strides = [8, 16, 32]

    def check(detections_, maps_) -> set[int]:
        levels = set()
        for b, found in enumerate(detections_):
            assert len(found["score"]) > 0
            for box, feat in zip(found["boxes"], found["feat"]):
                box_px = box * np.array([W, H, W, H], dtype=np.float32)
                level = fpn_level_by_hand(box_px, 3, 5)
                levels.add(level)
                want = pooled_by_hand(maps_[level - 3], b, box_px, strides[level - 3])
                np.testing.assert_allclose(feat, want, rtol=1e-4, atol=1e-5)
        return levels

    check(detections, maps)
    # boxes of three chosen sizes through the same postprocess, on the same maps: one per level
    Q = 3
    logits = torch.full((2, Q, det.model.config.max_text_len), -10.0)
    logits[:, :, int(det.token_class[:, 0].nonzero()[0])] = torch.tensor([3.0, 2.0, 1.0])
    sizes = torch.tensor([0.1, 0.45, 0.9])  # sqrt(w h) in input pixels: 55, 247, 494 -> levels 3, 4, 5
    centres = torch.tensor([[0.2, 0.3], [0.5, 0.5], [0.5, 0.5]])
    pred = torch.cat([centres, sizes[:, None].expand(Q, 2)], dim=1)[None].expand(2, Q, 4)
    chosen = det.postprocess(SimpleNamespace(logits=logits, pred_boxes=pred), maps, (H, W))
    assert check(chosen, maps) == {3, 4, 5}


def test_owlv2_roi_feature_is_roi_align_on_the_hooked_patch_grid(tiny_models) -> None:
    det = create_detector(DetectorConfig(name="owlv2", model=str(tiny_models["owlv2"]), box_threshold=0.0,
                                         max_per_frame=16))
    assert det.feat_dim == det.model.config.vision_config.hidden_size
    caught = {}
    # the last LayerNorm gives the patch embeddings (B, P, D) the boxes and classes are predicted from
    hook = det.model.layer_norm.register_forward_hook(lambda _m, _i, out: caught.__setitem__("map", out.clone()))
    torch.manual_seed(4)
    frames = torch.randint(0, 256, (2, 3, 48, 80), dtype=torch.uint8)  # padded to 80x80, resized to 64x64
    try:
        detections = det.detect(frames)
    finally:
        hook.remove()
    B, P, D = caught["map"].shape
    side = int(math.isqrt(P))
    grid = caught["map"].reshape(B, side, side, D).permute(0, 3, 1, 2)  # (B, D, 4, 4), 16 px a cell
    scale = np.array([80, 48, 80, 48], dtype=np.float32) * 64 / 80  # frame-relative -> input pixels
    sides = []
    for b, found in enumerate(detections):
        assert len(found["score"]) > 0
        for box, feat in zip(found["boxes"], found["feat"]):
            box_px = box * scale
            sides.append(math.sqrt(max(box_px[2] - box_px[0], 0) * max(box_px[3] - box_px[1], 0)))
            np.testing.assert_allclose(feat, pooled_by_hand(grid, b, box_px, 16), rtol=1e-4, atol=1e-5)
    assert max(sides) > 2 * min(sides)  # boxes of different sizes, all on OWLv2's one map


@pytest.mark.parametrize("sides,strides,want", [
    ([10, 223, 224, 447, 448, 895, 896, 2000], [8, 16, 32, 64], [0, 0, 1, 1, 2, 2, 3, 3]),
    ([10, 224, 2000], [16], [0, 0, 0]),  # one map: every box on it
    ([50, 300], [32, 64], [0, 0]),  # below the lowest level: clamped up
])
def test_fpn_levels_follow_box_size(sides, strides, want) -> None:
    boxes = torch.tensor([[0.0, 0.0, s, s] for s in sides])
    assert fpn_levels(boxes, strides).tolist() == want


@pytest.mark.parametrize("input_hw,map_hw,want", [((448, 672), (56, 84), 8), ((800, 1066), (100, 134), 8),
                                                  ((800, 1066), (13, 17), 64), ((960, 960), (60, 60), 16)])
def test_map_stride_is_the_power_of_two_of_a_padded_map(input_hw, map_hw, want) -> None:
    assert map_stride(input_hw, map_hw) == want


@pytest.mark.parametrize("name", ["grounding-dino", "owlv2"])
def test_query_kind_keeps_the_model_embedding(tiny_models, name) -> None:
    roi = create_detector(DetectorConfig(name=name, model=str(tiny_models[name]), box_threshold=0.0, max_per_frame=5))
    query = create_detector(DetectorConfig(name=name, model=str(tiny_models[name]), box_threshold=0.0,
                                           max_per_frame=5, features="query"))
    frames = torch.randint(0, 256, (1, 3, 48, 80), dtype=torch.uint8)
    a, b = roi.detect(frames)[0], query.detect(frames)[0]
    np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-5)  # same detections, other features
    assert a["feat"].shape[1] == roi.feat_dim and b["feat"].shape[1] == query.feat_dim
    assert not np.allclose(a["feat"][:, :4], b["feat"][:, :4])


def test_detect_records_the_kind_and_redoes_a_store_of_the_other(tiny_models, tmp_path, capsys) -> None:
    video = write_index_video(tmp_path / "match.mp4", 10, fps=25, width=80, height=48)
    out = tmp_path / "stores"
    args = ["detect", str(video), "--model", str(tiny_models["grounding-dino"]), "--fps", "5", "--out", str(out),
            "--box-threshold", "0", "--text-threshold", "0", "--max-per-frame", "3"]
    assert main(args) == 0
    assert EntityStore.open(store_path(out, "match")).key.features == "roi"
    assert main(args) == 0 and "already done" in capsys.readouterr().err
    assert main(args + ["--features", "query"]) == 0
    assert "1 store(s) written" in capsys.readouterr().err  # another kind is another store, not a skip
    assert EntityStore.open(store_path(out, "match")).key.features == "query"
    config = tmp_path / "d.yaml"
    config.write_text(f"detector:\n  model: {tiny_models['grounding-dino']}\n  features: roi\n")
    assert main(["detect", str(video), "--config", str(config), "--fps", "5", "--out", str(out)]) == 0
    assert EntityStore.open(store_path(out, "match")).key.features == "roi"


def test_glip_import_refuses_query_features(tmp_path, capsys) -> None:
    pt = tmp_path / "half1.pt"
    torch.save(torch.tensor([[0, 1, 0.1, 0.1, 0.3, 0.3] + [1.0] * 256]), pt)
    assert main(["detect", str(pt), "--detector", "glip-import", "--fps", "2", "--out", str(tmp_path / "s"),
                 "--features", "query"]) == 1
    assert "already hold RoI features" in capsys.readouterr().err
    assert main(["detect", str(pt), "--detector", "glip-import", "--fps", "2", "--out", str(tmp_path / "s")]) == 0
    assert EntityStore.open(store_path(tmp_path / "s", "half1")).key.features == "roi"


@pytest.mark.parametrize("detector,want", [("grounding-dino", "query"), ("owlv2", "query"),
                                           ("glip-import", "roi"), ("synthetic", "simulated"), ("other", None)])
def test_a_key_written_before_the_kind_was_recorded_reads_as_what_it_held(detector, want) -> None:
    key = StoreKey(video="v", detector=detector, model="m", prompt=("ball",), box_threshold=0.3,
                   text_threshold=0.25, max_per_frame=50, fps=2.0, size=None, features="roi").to_json()
    del key["features"]
    assert StoreKey.from_json(key).features == want


def write_feature_stores(root: Path, videos, features: str | None, width: int = 8) -> Path:
    """Stores of two boxes a frame with ``width``-d features of kind ``features``."""
    from _engine_helpers import VOCABULARY

    rng = np.random.default_rng(0)
    for video in videos:
        key = StoreKey(video=video.video, detector="grounding-dino", model="tiny", prompt=tuple(VOCABULARY),
                       box_threshold=0.0, text_threshold=0.0, max_per_frame=2, fps=None, size=None,
                       features=features)
        detections = [{"boxes": np.array([[0.1, 0.1, 0.5, 0.5], [0.4, 0.2, 0.9, 0.8]], np.float32),
                       "cls": np.array([0, 1]), "score": np.array([0.9, 0.5], np.float32),
                       "feat": rng.normal(size=(2, width)).astype(np.float32)} for _ in range(video.num_frames)]
        EntityStore.write(store_path(root, video.video), key, video.num_frames, detections)
    return root


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from _engine_helpers import make_dataset

    torch.set_num_threads(1)
    data = make_dataset(tmp_path_factory.mktemp("tiny"), {"train": 2, "val": 1, "test": 1}, with_entities=False)
    every = [v for videos in data.splits.values() for v in videos]
    write_feature_stores(data.entities, every, "roi")
    return data


def test_a_model_trained_on_roi_features_refuses_query_stores(tiny_data, tmp_path, capsys) -> None:
    from _engine_helpers import tiny_config
    from uglspot.engine.train import train

    run = tmp_path / "run"
    config = tiny_config(tiny_data, run, epochs=1, val_every=5, epoch_frames=16)
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, options={**config.model.options, "entity_source": "detector", "entity_feat_dim": 8}))
    train(config)
    capsys.readouterr()
    test_videos = tiny_data.splits["test"]
    query = write_feature_stores(tmp_path / "query", test_videos, "query")
    spot = ["spot", str(tiny_data.videos / f"{test_videos[0].video}.mp4"), "--model", str(run),
            "--out", str(tmp_path / "out"), "--device", "cpu", "--no-plot"]
    assert main(spot + ["--entities", str(query)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "query features but the model was trained on roi features" in err[0] and "--features roi" in err[0]
    assert main(spot + ["--entities", str(tiny_data.entities)]) == 0


def test_training_refuses_stores_of_mixed_kinds_only_when_it_reads_their_features(tiny_data, tmp_path) -> None:
    from uglspot.engine.store_checks import check_entity_stores
    from uglspot.model.spotter import SpotterConfig

    mixed = tmp_path / "mixed"
    train_videos = tiny_data.splits["train"]
    write_feature_stores(mixed, train_videos[:1], "roi")
    write_feature_stores(mixed, train_videos[1:], "query")
    videos = [(v.video, v.num_frames) for v in train_videos]
    detector = SpotterConfig(entity_source="detector", entity_feat_dim=8, num_entity_classes=2)
    with pytest.raises(UserError, match="query features but the store of 'train_0' has roi features"):
        check_entity_stores(mixed, videos, detector)
    backbone = SpotterConfig(entity_source="backbone", num_entity_classes=2)  # pools its own map: kind unused
    assert check_entity_stores(mixed, videos, backbone)["features"] == "roi"
