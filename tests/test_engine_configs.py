from __future__ import annotations

from pathlib import Path

import pytest

from uglspot.config import from_dict, to_dict
from uglspot.engine.config import RunConfig, load_run_config
from uglspot.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# dataset: (epochs, nms window, crop, metric), from the paper's IV-C and III-B
PAPER = {
    "soccernetv2": (150, 2, None, "soccernet_tight"),
    "finediving": (50, 1, [224, 224], "frame_map"),
    "finegym": (150, 1, [224, 224], "frame_map"),
    "tennis": (50, 1, [224, 224], "frame_map"),
    "fs_comp": (50, 1, [224, 224], "frame_map"),
    "fs_perf": (50, 1, [224, 224], "frame_map"),
}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_each_dataset_config_loads_with_the_paper_recipe(dataset: str) -> None:
    config = load_run_config(CONFIGS / f"{dataset}.yaml")
    epochs, nms, crop, metric = PAPER[dataset]
    assert config.dataset == dataset
    assert (config.train.epochs, config.infer.nms_window, config.augment.crop, config.train.metric) == (
        epochs, nms, crop, metric)
    assert config.data.clip_len == 100 and config.train.batch_size == 8
    assert config.optim.lr == 1e-3 and config.optim.warmup_epochs == 3 and config.optim.warmup_start == 0.01
    assert config.train.epoch_frames == 500_000 and config.data.pad == 5
    # the released loader turns mixup off whenever it reads stored entity features
    stored_features = config.model.options["entity_source"] == "detector"
    assert config.augment.mixup is not stored_features and config.augment.mixup_alpha == 0.2
    assert config.augment.jitter_p == 0.25
    assert config.model.options["focal_gamma"] == 5.0 and config.model.options["loss"] == "focal"
    assert config.model.options["focal_alpha"] == 0.25  # the released focal loss's default
    assert Path(config.data.labels).is_absolute() and Path(config.data.labels).name == dataset
    assert from_dict(RunConfig, to_dict(config)) == config  # the resolved YAML reads back the same


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_model_options_are_valid_spotter_fields(dataset: str) -> None:
    spotter = pytest.importorskip("uglspot.model.spotter")
    config = load_run_config(CONFIGS / f"{dataset}.yaml")
    built = spotter.build_config(config.model.name, 4, clip_len=config.data.clip_len, **config.model.options)
    assert built.clip_len == 100 and built.focal_gamma == 5.0
    assert built.pretrained, "real training starts from ImageNet weights (tests set pretrained false)"
    # the paper's configs build the paper's architecture: fusion before one GRU head, the hard rule
    assert config.model.name == "ugl_paper_rny008" and not built.global_head
    assert built.entity_selection == "hard" and built.entity_aux == 0


def test_soccernet_config_decodes_at_the_labels_rate(shared_labels: Path) -> None:
    from uglspot.data.labels import read_e2e_labels

    config = load_run_config(CONFIGS / "soccernetv2.yaml")
    videos = read_e2e_labels(shared_labels / "soccernetv2" / "val.json", allow_past_end=True)
    assert config.data.fps == pytest.approx(25 / 12)
    assert sum(abs(v.fps - config.data.fps) < 1e-6 for v in videos) > len(videos) * 0.9
    assert (config.data.width, config.data.height) == (398, 224)


def test_overrides_and_unknown_keys(tmp_path: Path) -> None:
    config = load_run_config(CONFIGS / "finediving.yaml", ["train.epochs=3", "augment.crop=null"])
    assert config.train.epochs == 3 and config.augment.crop is None
    with pytest.raises(UserError, match="unknown key.*epoch"):
        load_run_config(CONFIGS / "finediving.yaml", ["train.epoch=3"])
    with pytest.raises(UserError, match="train.amp"):
        load_run_config(CONFIGS / "finediving.yaml", ["train.amp=fp32"])


def test_the_default_config_builds_a_registered_model() -> None:
    from uglspot.engine.train import build_model
    from uglspot.model.spotter import DEFAULT_MODEL, list_models

    config = RunConfig()
    config.data.entities = "stores"  # the default model uses entities
    assert config.model.name in list_models() and config.model.name == DEFAULT_MODEL
    model = build_model(config, num_classes=3)
    assert model.config.name == config.model.name and model.config.num_classes == 3
