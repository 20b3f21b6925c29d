"""Regressions from a user's pass over frames → detect → train → spot →
predict: the commands agree on paths and refuse mismatched inputs in one line."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from _engine_helpers import make_dataset, tiny_config
from uglspot.cli import main
from uglspot.app.predict import run_directory
from uglspot.data.frame_cache import FrameCache
from uglspot.engine.train import train
from uglspot.errors import UserError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("flow"), {"train": 2, "val": 1}, num_frames=24)


def test_frames_takes_options_between_videos(data, tmp_path, capsys) -> None:
    first, second = sorted(data.videos.glob("*.mp4"))[:2]
    assert main(["frames", str(first), "--fps", "10", str(second), "--out", str(tmp_path / "cache")]) == 0
    cache = FrameCache(tmp_path / "cache")
    assert sorted(cache.videos()) == [first.stem, second.stem]


def test_training_refuses_a_frame_cache_of_another_height(data, tmp_path, capsys) -> None:
    cache = tmp_path / "cache"
    assert main(["frames", str(data.videos), "--height", "16", "--out", str(cache)]) == 0
    config = tiny_config(data, tmp_path / "run")
    config.data = dataclasses.replace(config.data, frame_cache=str(cache), videos=None)
    with pytest.raises(UserError, match=r"cached at 24x16 but the config asks for height 32.*--height 32"):
        train(config)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_refuses_entity_stores_detected_at_another_rate(data, tmp_path) -> None:
    from uglspot.entities.store import EntityStore, store_path

    stores = tmp_path / "stores"
    empty = {"boxes": np.zeros((0, 4), np.float32), "cls": np.zeros(0, np.int64), "score": np.zeros(0, np.float32)}
    for video in data.splits["train"] + data.splits["val"]:
        key = EntityStore.open(store_path(data.entities, video.video)).key
        half = video.num_frames // 2  # as if detected at half the labels' rate
        EntityStore.write(store_path(stores, video.video), key, half, [empty] * half)
    config = tiny_config(data, tmp_path / "run")
    config.data = dataclasses.replace(config.data, entities=str(stores))
    with pytest.raises(UserError, match=r"12 frames but the video has 24"):
        train(config)


def test_training_names_videos_without_an_entity_store(data, tmp_path) -> None:
    config = tiny_config(data, tmp_path / "run")
    config.data = dataclasses.replace(config.data, entities=str(tmp_path))
    with pytest.raises(UserError, match=r"no entity store for 3 video\(s\): train_0, train_1, val_0.*uglspot detect"):
        train(config)


def test_training_refuses_a_vocabulary_larger_than_the_model_embeds(data, tmp_path) -> None:
    config = tiny_config(data, tmp_path / "run")
    config.model.options = {"num_entity_classes": 1}
    with pytest.raises(UserError, match=r"num_entity_classes=2"):
        train(config)


def test_missing_imagenet_weights_fail_at_once_without_network(monkeypatch, tmp_path) -> None:
    import socket

    import huggingface_hub.constants as hub
    import timm

    from uglspot.model.backbone import Backbone

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    def must_not_download(*args, **kwargs):
        raise AssertionError("timm was asked to download")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(timm, "create_model", must_not_download)
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"network is unreachable.*model.options.pretrained=false"):
        Backbone("regnety_002", "gsm", clip_len=4, pretrained=True)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("model, expected", [
    ("runs/x", "runs/x"),
    ("runs/x/checkpoints/best-e0002-s00000006", "runs/x"),
    ("exported/model", "exported/model"),
])
def test_predict_writes_beside_the_model_it_ran(model: str, expected: str) -> None:
    assert run_directory(Path(model)) == Path(expected)
