"""The run configuration: one typed dataclass per section of a training YAML.

``configs/<dataset>.yaml`` files fill these; ``uglspot train CONFIG --set
a.b=value`` overrides keys; the resolved configuration is written beside the
run as ``config.yaml``. Unknown keys are errors (``uglspot.config.from_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from uglspot.config import load_config
from uglspot.data.augment import AugmentConfig


@dataclass
class DataConfig:
    labels: str = ""  # directory holding class.txt and {split}.json (E2E-Spot format)
    videos: str | None = None  # directory of video files named <video id>.<ext>
    frame_cache: str | None = None  # a FrameCache directory, used instead of decoding videos
    entities: str | None = None  # an entity store directory (one store per video)
    train_splits: list[str] = field(default_factory=lambda: ["train"])
    val_split: str | None = "val"
    test_split: str = "test"
    fps: float | None = None  # decoding rate; null: the labels' fps (the file's own when labels say -1)
    height: int = 224  # frames are resized to this height
    width: int | None = None  # null keeps the aspect ratio of the labels' width/height
    clip_len: int = 100  # δ, frames per training clip and per inference window
    pad: int = 5  # clips and windows may start this many frames before the video
    dilate: int = 0  # label frames within ±dilate of an event with its class
    foreground: float = 0.0  # share of training clips drawn to contain an event (E2E-Spot's fg_upsample)
    foreground_balance: Literal["class", "uniform"] = "class"  # pick a class first, or any event uniformly
    allow_events_past_end: bool = False  # keep label files whose events pass num_frames (they are dropped)
    entity_slots: int = 50
    workers: int = 2  # data-loader processes per rank


@dataclass
class ModelConfig:
    name: str = "ugl_rny008_gsm"  # a name from uglspot.model.spotter.list_models()
    options: dict[str, Any] = field(default_factory=dict)  # SpotterConfig overrides


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 3.0
    warmup_start: float = 0.01  # warm-up starts at this fraction of lr
    grad_clip: float | None = None  # max gradient norm; null: no clipping
    accumulate: int = 1  # micro-batches per optimiser step


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 8  # clips per rank per micro-batch
    epoch_frames: int = 500_000  # an epoch is this many training frames (over all ranks)
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # auto: bf16 on CUDA where supported, else fp16; off on CPU
    val_every: int = 1  # validate every this many epochs (and after the last)
    metric: Literal["frame_map", "soccernet_tight"] = "frame_map"
    seed: int = 0
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints; 0: at epoch ends only
    log_every: int = 20  # optimiser steps between loss readings (each reading syncs the device)
    max_bad_steps: int = 20  # stop after this many non-finite losses in a row
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower; for checks)
    device: str = "auto"  # auto, cpu, cuda, cuda:1 ...
    tensorboard: bool = True  # write TensorBoard events when tensorboard is installed
    find_unused_parameters: bool = False  # DDP option for models with branches a batch may skip


@dataclass
class InferConfig:
    threshold: float = 0.01  # candidate events need at least this score
    nms_window: int = 1  # per-class NMS radius in frames (1 FineDiving/FineGym, 2 SoccerNet at 2 fps)
    batch_size: int = 4  # windows per forward pass
    entities_per_event: int = 3  # most-attended entities reported per event


@dataclass
class RunConfig:
    dataset: str = "custom"  # soccernetv2, finediving, finegym, tennis, fs_comp, fs_perf or custom
    out: str = "runs/custom"  # run directory (checkpoints, logs, config.yaml)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """A run configuration from YAML with ``key=value`` overrides. Relative
    paths are relative to the working directory and resolved here, so the
    run's saved ``config.yaml`` works from anywhere (e.g. on resume)."""
    config = load_config(RunConfig, path, overrides)
    for name in ("labels", "videos", "frame_cache", "entities"):
        value = getattr(config.data, name)
        if value:
            setattr(config.data, name, str(Path(value).expanduser().resolve()))
    config.out = str(Path(config.out).expanduser().resolve())
    return config
