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
from uglspot.errors import UserError
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
    name: str = "ugl_rny008"  # a name from uglspot.model.spotter.list_models(); the paper's model
    options: dict[str, Any] = field(default_factory=dict)  # SpotterConfig overrides
    init: str | None = None  # start from the weights of this model folder or run directory (train --init)


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
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # auto: bf16 on CUDA where supported, else fp16; fp32 on CPU (bf16: also on a CPU with AVX512-BF16/AMX)
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


def _whole(low: int) -> tuple[Any, str]:
    return (lambda v: v >= low), f">= {low}"


def _pair(low: float, high: float) -> tuple[Any, str]:
    return (lambda v: len(v) == 2 and low <= v[0] <= v[1] <= high), f"[low, high] within [{low:g}, {high:g}]"


_POSITIVE = (lambda v: v > 0), "> 0"
_FRACTION = (lambda v: 0 <= v <= 1), "in [0, 1]"
_OPTIONAL = {"data.width", "data.fps", "optim.grad_clip", "augment.crop"}
_DEVICE_TYPES = ("cpu", "cuda", "mps")

# key: (holds, what it must be). Types are already checked by from_dict (numbers finite, ints in int64).
RANGES: dict[str, tuple[Any, str]] = {
    "data.fps": _POSITIVE, "data.height": _whole(1), "data.width": _whole(1), "data.clip_len": _whole(1),
    "data.pad": _whole(0), "data.dilate": _whole(0), "data.entity_slots": _whole(1), "data.workers": _whole(0),
    "augment.crop": ((lambda v: len(v) == 2 and min(v) >= 1), "[height, width] of at least 1 pixel each"),
    "augment.jitter_p": _FRACTION, "augment.hue": ((lambda v: 0 <= v <= 0.5), "in [0, 0.5]"),
    "augment.saturation": _pair(0, 10), "augment.brightness": _pair(0, 10), "augment.contrast": _pair(0, 10),
    "augment.blur_p": _FRACTION, "augment.blur_kernel": ((lambda v: v >= 1 and v % 2 == 1), "an odd number >= 1"),
    "augment.blur_sigma": ((lambda v: len(v) == 2 and 0 < v[0] <= v[1]), "[low, high] with 0 < low <= high"),
    "augment.mixup_alpha": _POSITIVE,
    "optim.lr": _POSITIVE, "optim.weight_decay": ((lambda v: v >= 0), ">= 0"),
    "optim.warmup_epochs": ((lambda v: v >= 0), ">= 0"), "optim.warmup_start": _FRACTION,
    "optim.grad_clip": _POSITIVE, "optim.accumulate": _whole(1),
    "train.epochs": _whole(1), "train.batch_size": _whole(1), "train.epoch_frames": _whole(1),
    "train.val_every": _whole(1), "train.seed": _whole(0), "train.checkpoint_every": _whole(0),
    "train.log_every": _whole(1), "train.max_bad_steps": _whole(1),
    "infer.threshold": _FRACTION, "infer.nms_window": _whole(0), "infer.batch_size": _whole(1),
    "infer.entities_per_event": _whole(0),
}


def check_run_config(config: RunConfig, where: str = "config") -> RunConfig:
    """Refuse values out of range, in one line naming the key, e.g.
    ``train.batch_size must be >= 1, got 0``: sizes and counts positive,
    rates and probabilities in range, a device torch knows, the crop inside
    the frame. Called wherever a run configuration is read."""
    def fail(key: str, what: str, value: Any) -> UserError:
        return UserError(f"{where}: {key} must be {what}, got {value!r}")

    for key, (holds, what) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is None and key in _OPTIONAL:
            continue
        try:
            ok = bool(holds(value))
        except TypeError:
            ok = False
        if not ok:
            raise fail(key, what, value)
    device = config.train.device
    if device != "auto":
        import torch

        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError, TypeError):
            parsed = None
        if parsed is None or parsed.type not in _DEVICE_TYPES:
            raise fail("train.device", f"auto or a torch device of type {', '.join(_DEVICE_TYPES)} "
                                       "(e.g. cpu, cuda, cuda:1)", device)
    crop = config.augment.crop
    if crop is not None and crop[0] > config.data.height:
        raise fail("augment.crop", f"at most the frame: height {crop[0]} > data.height {config.data.height}", crop)
    if crop is not None and config.data.width and crop[1] > config.data.width:
        raise fail("augment.crop", f"at most the frame: width {crop[1]} > data.width {config.data.width}", crop)
    if not config.data.train_splits:
        raise fail("data.train_splits", "at least one split name", config.data.train_splits)
    return config


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """A run configuration from YAML with ``key=value`` overrides. Relative
    paths are relative to the working directory and resolved here, so the
    run's saved ``config.yaml`` works from anywhere (e.g. on resume)."""
    config = check_run_config(load_config(RunConfig, path, overrides), str(path))
    for name in ("labels", "videos", "frame_cache", "entities"):
        value = getattr(config.data, name)
        if value:
            setattr(config.data, name, str(Path(value).expanduser().resolve()))
    config.out = str(Path(config.out).expanduser().resolve())
    return config


_DIGEST_LINE = "# uglspot sha256 of the lines above: "


def saved_config_text(config: RunConfig) -> str:
    """A run's ``config.yaml``: the resolved config, and a last comment line
    with the sha256 of the lines above, so a hand edit is noticed on resume."""
    import hashlib

    from uglspot.config import dump_yaml

    text = dump_yaml(config)
    return f"{text}{_DIGEST_LINE}{hashlib.sha256(text.encode()).hexdigest()}\n"


def check_saved_config(path: Path) -> None:
    """A run's ``config.yaml`` (:func:`saved_config_text`) is written whole by
    training; one missing a section (cut short) would resume with that
    section's defaults (50 epochs, another learning rate) without a word, and
    one edited by hand with settings the run did not start with: both are
    refused. Files from before the checksum line are only checked for their
    sections."""
    import hashlib
    from dataclasses import fields

    from uglspot.config import load_yaml
    from uglspot.io import read_text

    if not path.is_file():
        return  # resume itself says that the run has no checkpoint
    saved = load_yaml(path)
    missing = [f.name for f in fields(RunConfig) if f.name not in saved]
    if missing:
        raise UserError(f"{path}: the run's saved config has no {', '.join(missing)} section(s), so resuming would "
                        "use their defaults; restore the file (the run wrote it whole), or resume with the "
                        "config it was started with: uglspot train CONFIG --resume RUN")
    text = read_text(path, "config file (YAML)")
    body, _, last = text.rstrip("\n").rpartition("\n")
    if last.startswith(_DIGEST_LINE) and hashlib.sha256(f"{body}\n".encode()).hexdigest() != last[len(_DIGEST_LINE):]:
        raise UserError(f"{path}: changed since the run wrote it (the checksum on its last line differs); restore "
                        "it, and change settings on resume with --set KEY=VALUE, which the run records")
