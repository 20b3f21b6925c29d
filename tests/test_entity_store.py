from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from uglspot.entities.store import EntityStore, StoreKey, import_glip
from uglspot.errors import UserError

KEY = StoreKey(video="match", detector="grounding-dino", model="IDEA-Research/grounding-dino-tiny",
               prompt=("ball", "yellow card", "red card", "goal", "referee", "player"),
               box_threshold=0.3, text_threshold=0.25, max_per_frame=50, fps=2.0, size=(448, 800),
               source_bytes=1234, source_mtime=1.5)


def random_detections(num_frames: int, feat_dim: int | None, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_frames):
        n = int(rng.integers(0, 9))
        xy = rng.uniform(0, 0.5, (n, 2)).astype(np.float32)
        det = {"boxes": np.concatenate([xy, xy + 0.25], axis=1), "cls": rng.integers(0, 6, n),
               "score": rng.uniform(0, 1, n).astype(np.float32)}
        if feat_dim:
            det["feat"] = rng.normal(size=(n, feat_dim)).astype(np.float32)
        out.append(det)
    return out


def dense_reference(dets: list[dict], start: int, count: int, slots: int) -> dict:
    """Window computed the obvious way, frame by frame."""
    ref = {"score": np.zeros((count, slots), np.float32), "mask": np.zeros((count, slots), bool),
           "cls": np.zeros((count, slots), np.int64), "boxes": np.zeros((count, slots, 4), np.float32)}
    for k in range(count):
        t = start + k
        if not 0 <= t < len(dets):
            continue
        order = np.argsort(-dets[t]["score"], kind="stable")[:slots]
        n = len(order)
        ref["score"][k, :n] = dets[t]["score"][order]
        ref["cls"][k, :n] = dets[t]["cls"][order]
        ref["boxes"][k, :n] = dets[t]["boxes"][order]
        ref["mask"][k, :n] = True
    return ref


@pytest.mark.parametrize("start,count,slots", [(0, 40, 50), (5, 10, 3), (-5, 10, 4), (35, 10, 8), (50, 5, 2), (0, 1, 1)])
def test_window_matches_a_frame_by_frame_reference(tmp_path, start, count, slots) -> None:
    dets = random_detections(40, feat_dim=16)
    path = EntityStore.write(tmp_path / "s.safetensors", KEY, 40, dets)
    store = EntityStore.open(path, expected_key=KEY)
    assert (store.num_frames, store.feat_dim, store.vocabulary) == (40, 16, list(KEY.prompt))
    win = store.window(start, count, slots=slots)
    ref = dense_reference(dets, start, count, slots)
    for name in ("score", "mask", "cls", "boxes"):
        np.testing.assert_array_equal(win[name], ref[name], err_msg=name)
    assert win["feat"].shape == (count, slots, 16) and win["feat"].dtype == np.float32
    assert not win["feat"][~win["mask"]].any()
    # scores are sorted within every frame
    assert (np.diff(np.where(win["mask"], win["score"], -1), axis=1) <= 0).all()


def test_features_round_trip_to_half_precision(tmp_path) -> None:
    dets = random_detections(6, feat_dim=256, seed=3)
    store = EntityStore.open(EntityStore.write(tmp_path / "s.safetensors", KEY, 6, dets))
    win = store.window(0, 6, slots=50)
    for t, det in enumerate(dets):
        order = np.argsort(-det["score"], kind="stable")
        np.testing.assert_allclose(win["feat"][t, :len(order)], det["feat"][order], rtol=1e-3, atol=1e-3)


def test_a_window_never_reads_the_whole_video(tmp_path, monkeypatch) -> None:
    dets = random_detections(1000, feat_dim=8)
    store = EntityStore.open(EntityStore.write(tmp_path / "s.safetensors", KEY, 1000, dets))
    read = []
    real = store._slice
    monkeypatch.setattr(store, "_slice", lambda name, lo, hi: read.append(hi - lo) or real(name, lo, hi))
    store.window(500, 100)
    total_boxes = store.header["num_boxes"]
    assert max(read) < total_boxes / 5


def test_store_without_features(tmp_path) -> None:
    store = EntityStore.open(EntityStore.write(tmp_path / "s.safetensors", KEY, 10, random_detections(10, None)))
    assert store.feat_dim is None and store.window(0, 4)["feat"] is None


@pytest.mark.parametrize("field,value", [
    ("model", "google/owlv2-base-patch16-ensemble"), ("prompt", ("ball",)), ("fps", 25.0),
    ("box_threshold", 0.35), ("source_mtime", 2.5), ("size", (800, 1333)),
])
def test_mismatching_key_is_an_error_unless_stale_allowed(tmp_path, field, value) -> None:
    path = EntityStore.write(tmp_path / "s.safetensors", KEY, 3, [])
    other = dataclasses.replace(KEY, **{field: value})
    with pytest.raises(UserError, match=f"{field}:.*--allow-stale"):
        EntityStore.open(path, expected_key=other)
    assert EntityStore.open(path, expected_key=other, allow_stale=True).key == KEY
    assert EntityStore.open(path, expected_key=dataclasses.asdict(KEY)).num_frames == 3


def test_header_records_what_made_it(tmp_path) -> None:
    path = EntityStore.write(tmp_path / "s.safetensors", KEY, 3, [])
    header = EntityStore.read_header(path)
    assert header["key"]["source_bytes"] == 1234 and header["made_by"].startswith("uglspot ")


def test_an_edited_header_is_refused_at_open(tmp_path) -> None:
    """The header is under the checksum too: a store's fps edited from 2 to 4
    once passed, and its detections were then read at the wrong frames."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = EntityStore.write(tmp_path / "s.safetensors", KEY, 4, random_detections(4, None))
    with safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    header = json.loads(metadata["uglspot_entity_store"])
    header["key"]["fps"] = 4.0
    metadata["uglspot_entity_store"] = json.dumps(header)  # every checksum entry kept as it was
    save_file(tensors, str(path), metadata=metadata)
    for read in (EntityStore.read_header, EntityStore.open, EntityStore.verify):
        with pytest.raises(UserError, match="entity store is damaged .*header differs"):
            read(path)


def test_atomic_write_leaves_no_store_when_killed(tmp_path, monkeypatch) -> None:
    import safetensors.numpy

    path = tmp_path / "s.safetensors"
    EntityStore.write(path, KEY, 3, [])
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        EntityStore.write(path, KEY, 5, [])
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


@pytest.mark.parametrize("content,message", [
    (b"not safetensors", "not a readable entity store"),
])
def test_bad_store_files(tmp_path, content, message) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        EntityStore.open(path)
    with pytest.raises(UserError, match="not found"):
        EntityStore.open(tmp_path / "missing.safetensors")


def test_bad_detections_are_refused(tmp_path) -> None:
    det = {"boxes": np.zeros((1, 4)), "cls": np.array([9]), "score": np.array([0.5])}
    with pytest.raises(UserError, match="class index 9"):
        EntityStore.write(tmp_path / "s.safetensors", KEY, 2, [det])


def test_store_pickles_for_dataloader_workers(tmp_path) -> None:
    store = EntityStore.open(EntityStore.write(tmp_path / "s.safetensors", KEY, 10, random_detections(10, 4)))
    first = store.window(0, 10)
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.window(0, 10)["boxes"], first["boxes"])


def test_import_released_glip_file(tmp_path) -> None:
    rows = torch.tensor([
        [0, 1, 0.1, 0.1, 0.2, 0.2] + [1.0] * 256,
        [2, 6, 0.5, 0.5, 0.9, 0.9] + [2.0] * 256,
        [0, 4, 0.0, 0.0, 1.0, 1.0] + [3.0] * 256,
    ])
    pt = tmp_path / "half1.pt"
    torch.save(rows, pt)
    key = dataclasses.replace(KEY, detector="glip-import", model="GLIP-L")
    store = EntityStore.open(import_glip(pt, key, num_frames=4, class_base=1), expected_key=key)
    win = store.window(0, 4, slots=50)
    assert win["mask"].sum(axis=1).tolist() == [2, 0, 1, 0]
    assert win["cls"][0, :2].tolist() == [0, 3] and win["cls"][2, 0] == 5
    np.testing.assert_allclose(win["boxes"][2, 0], [0.5, 0.5, 0.9, 0.9])
    assert store.feat_dim == 256 and win["feat"][0, 1, 0] == 3.0


def test_import_glip_leaves_out_rows_below_the_class_base_as_the_released_loader_does(tmp_path) -> None:
    rows = torch.tensor([
        [0, 0, 0.1, 0.1, 0.2, 0.2] + [9.0] * 256,  # class 0: the released loader skips it
        [0, 2, 0.3, 0.3, 0.4, 0.4] + [1.0] * 256,
        [1, 0, 0.5, 0.5, 0.6, 0.6] + [9.0] * 256,
    ])
    pt = tmp_path / "half1.pt"
    torch.save(rows, pt)
    store = EntityStore.open(import_glip(pt, KEY, num_frames=2, class_base=1))
    win = store.window(0, 2, slots=50)
    assert win["mask"].sum(axis=1).tolist() == [1, 0] and win["cls"][0, 0] == 1 and win["feat"][0, 0, 0] == 1.0
    assert store.header["extra"]["skipped_rows"] == 2
    zero_based = EntityStore.open(import_glip(pt, KEY, num_frames=2, class_base=0, out_path=tmp_path / "z.st"))
    assert zero_based.window(0, 2)["mask"].sum() == 3 and zero_based.header["extra"]["skipped_rows"] == 0


@pytest.mark.parametrize("rows,kwargs,message", [
    (torch.zeros(3, 4), {}, "2-D tensor of rows"),
    (torch.tensor([[0, 9, 0, 0, 1, 1.0]]), {}, "class indices"),
    (torch.tensor([[0, 1, 10, 10, 200, 100.0]]), {}, "in pixels"),
    (torch.tensor([[7, 1, 0, 0, 1, 1.0]]), {"num_frames": 5}, "past the video"),
])
def test_import_glip_bad_files(tmp_path, rows, kwargs, message) -> None:
    pt = tmp_path / "x.pt"
    torch.save(rows, pt)
    with pytest.raises(UserError, match=message):
        import_glip(pt, KEY, **kwargs)


def test_import_glip_pixel_boxes_and_refuses_pickles(tmp_path) -> None:
    pt = tmp_path / "px.pt"
    torch.save(torch.tensor([[0, 0, 199.0, 112.0, 398.0, 224.0]]), pt)
    store = EntityStore.open(import_glip(pt, KEY, box_scale=(398, 224)))
    np.testing.assert_allclose(store.window(0, 1)["boxes"][0, 0], [0.5, 0.5, 1.0, 1.0], atol=1e-6)
    evil = tmp_path / "evil.pt"
    torch.save({"rows": object()}, evil)
    with pytest.raises(UserError, match="not a readable tensor file"):
        import_glip(evil, KEY)
