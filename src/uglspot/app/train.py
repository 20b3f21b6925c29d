"""Train a spotter from a YAML configuration (``uglspot train``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from uglspot.errors import Interrupted, UserError


@dataclass
class TrainOutcome:
    """A finished run: its directory and the loop's final ``RunPosition``
    (epoch, step, bad_total, best, best_epoch)."""

    run: Path
    progress: Any
    main_process: bool  # False on the other ranks of a torchrun job (they report nothing)


def train_from_config(config: str | Path | None = None, overrides: Sequence[str] = (),
                      resume: str | Path | None = None, out: str | Path | None = None,
                      init: str | Path | None = None) -> TrainOutcome:
    """Train the model of ``config`` (YAML, see configs/) with ``KEY=VALUE``
    ``overrides`` into ``out`` (default: the config's ``out``), or continue
    the run in ``resume`` from its last complete checkpoint (its own
    config.yaml unless ``config`` is given). ``init``: a model folder or run
    directory whose weights the new run starts from (``model.init``). Under
    torchrun every rank calls this."""
    from uglspot.engine.config import check_saved_config, load_run_config
    from uglspot.engine.preflight import set_keys
    from uglspot.engine.train import train

    resume = Path(resume) if resume is not None else None
    out = Path(out) if out is not None else None
    given = list(overrides)
    overrides = list(overrides)
    if init is not None:
        if resume is not None:
            raise UserError(f"--init {init} starts a new run from a model's weights; --resume {resume} continues "
                            "a run from its own checkpoint: give one of them")
        overrides.append(f"model.init={Path(init).resolve()}")
    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise UserError(f"--out {out} and --resume {resume} differ; a resumed run stays in its directory")
        config_path = config or resume / "config.yaml"
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: not found; is {resume} a run directory of `uglspot train`?")
        if config is None:
            check_saved_config(Path(config_path))
        overrides.append(f"out={resume.resolve()}")
    elif config is None:
        raise UserError("give a CONFIG.yaml (see configs/), or --resume RUN_DIR")
    else:
        config_path = config
        if out is not None:
            overrides.append(f"out={out.resolve()}")
    run_config = load_run_config(config_path, overrides)
    try:
        progress = train(run_config, resume=resume is not None, set_keys=set_keys(given))
    except KeyboardInterrupt:
        raise Interrupted(interrupted_advice(Path(run_config.out))) from None
    return TrainOutcome(Path(run_config.out), progress, os.environ.get("RANK", "0") == "0")


def interrupted_advice(run: Path) -> str:
    """What to do after Ctrl-C stopped a run in ``run``: the command that
    continues it from its last checkpoint, or, before there is one, that
    nothing was saved."""
    import shlex

    from uglspot.engine.state import resolve

    try:
        last = resolve(run / "checkpoints", "last", missing_ok=True)
    except UserError:  # a damaged pointer: resume explains it
        last = run
    if last is None:
        return f"no checkpoint was saved in {run} yet; run the same command again to start over"
    return f"continue from its last checkpoint with `uglspot train --resume {shlex.quote(str(run))}`"


# What `uglspot train --labels DIR --videos DIR` trains without a config: E2E-Spot's recipe (100-frame
# clips, AdamW 1e-3, cosine after a warm-up, NMS ±1 frame) sized to a few labelled videos and this machine.
OWN_EPOCHS = 20
OWN_HEIGHT = 224  # frames are decoded at most this high (never upscaled)


@dataclass
class OwnVideosPlan:
    """The run ``train_own_videos`` starts: its configuration, and one line
    per choice a user should know about (printed before the first step)."""

    config: Any  # RunConfig
    notes: list[str]


def plan_own_videos(labels: str | Path, videos: str | Path, out: str | Path, *, entities: str | Path | None = None,
                    model: str | None = None, epochs: int | None = None, overrides: Sequence[str] = ()) -> OwnVideosPlan:
    """The training configuration for a folder of E2E-Spot labels
    (class.txt, train.json, and val.json when there is one) and a folder of
    videos, with defaults sized to the data and the machine; ``overrides``
    (``KEY=VALUE``) come last."""
    from uglspot.config import apply_overrides, from_dict
    from uglspot.data.labels import read_class_list, read_e2e_labels
    from uglspot.engine.config import RunConfig, check_run_config

    labels, videos, out = Path(labels), Path(videos), Path(out)
    for path, what in ((labels / "class.txt", "class.txt"), (labels / "train.json", "train.json")):
        if not path.is_file():
            raise UserError(f"{labels}: no {what} in it; a labels folder holds class.txt and train.json (and "
                            "val.json, test.json) in E2E-Spot form, see README 'Your own videos'")
    if not videos.is_dir():
        raise UserError(f"{videos}: not a folder; pass the folder holding <video id>.mp4 for each video of the labels")
    if entities is not None and not Path(entities).is_dir():
        raise UserError(f"{entities}: not a folder; pass the output folder of `uglspot detect`")
    notes = []
    train = read_e2e_labels(labels / "train.json", read_class_list(labels / "class.txt"))
    name = model or ("ugl_rny002" if entities is not None else "e2e_rny002")
    if entities is None and _uses_entities(name):
        raise UserError(f"model {name} reads the scene's entities: pass --entities STORES (make them with "
                        "`uglspot detect VIDEOS --out STORES`), or train the global-only e2e_rny002 first")
    if model is None and entities is None:
        notes.append("model e2e_rny002 (global-only): no --entities given. The UGL models also read the scene's "
                     "entities: make their stores with `uglspot detect VIDEOS --out STORES` and pass --entities STORES")
    heights = sorted(v.height for v in train if v.height)
    height = min(OWN_HEIGHT, heights[len(heights) // 2]) if heights else OWN_HEIGHT
    height -= height % 2
    fps = [v.fps for v in train if v.fps > 0]
    train_frames = sum(v.num_frames for v in train)
    clip_len = max(16, min(100, min((v.num_frames for v in train), default=100)))
    batch = 8 if _has_gpu() else 4
    options: dict[str, Any] = {}
    reason = _weights_reason(name)
    if reason is None:
        options["pretrained"] = True
    else:
        notes.append(f"backbone from random weights: its ImageNet weights are not at hand ({reason}); with them "
                     "(in the Hugging Face cache, or model.options.pretrained_file=PATH) training needs far fewer "
                     "epochs")
    cores = os.cpu_count() or 1
    epochs = epochs or OWN_EPOCHS
    raw = {
        "dataset": "custom", "out": str(out.resolve()),
        "data": {"labels": str(labels), "videos": str(videos), "entities": str(entities) if entities else None,
                 "val_split": "val" if (labels / "val.json").is_file() else None, "height": height,
                 "clip_len": clip_len, "foreground": 0.5, "workers": max(0, min(2, cores - 1))},
        "model": {"name": name, "options": options},
        "train": {"epochs": epochs, "batch_size": batch, "tensorboard": False},
    }
    config = from_dict(RunConfig, apply_overrides(raw, list(overrides)), "--set")
    given = {item.split("=", 1)[0].strip() for item in overrides}
    if "optim.warmup_epochs" not in given:  # a warm-up that never covers the whole run
        config.optim.warmup_epochs = min(3.0, config.train.epochs / 10)
    if "train.epoch_frames" not in given:  # one pass over the training frames (E2E-Spot's 500,000 suit a benchmark)
        config.train.epoch_frames = max(config.train.batch_size * config.data.clip_len, min(500_000, train_frames))
    config = check_run_config(config, "--set")
    for key in ("labels", "videos", "entities"):
        value = getattr(config.data, key)
        if value:
            setattr(config.data, key, str(Path(value).expanduser().resolve()))
    if config.data.val_split is None:
        notes.append(f"no val.json in {labels}: no validation, so the last checkpoint is the model and spot keeps "
                     "events at its --threshold (with val.json, validation picks the best epoch and per-class "
                     "thresholds)")
    rate = f"{fps[0]:g} fps" if fps and len(set(fps)) == 1 else "each video's own rate"
    notes.append(f"{len(train)} training videos, {train_frames:,} frames at {rate}, {config.data.height} px high; "
                 f"{config.train.epochs} epochs of {config.train.epoch_frames:,} frames in clips of "
                 f"{config.data.clip_len} × batch {config.train.batch_size}; any key can be changed with --set, "
                 f"and {out}/config.yaml keeps them all")
    return OwnVideosPlan(config, notes)


def train_own_videos(plan: OwnVideosPlan, on_note: Any = None) -> TrainOutcome:
    """Train ``plan.config``; ``on_note(text)`` hears, after the third step,
    the time an epoch and the whole run will take on this machine (default:
    a line on stderr, above the progress bar)."""
    import time

    from uglspot.engine.train import train
    from uglspot.progress import note

    on_note = on_note or (lambda text: note(f"note: {text}"))

    config = plan.config
    steps = config.train.epochs * max(1, config.train.epoch_frames // (config.train.batch_size * config.data.clip_len))
    started: list[float] = []
    measured = min(3, steps)  # the estimate comes after this step

    def estimate(progress: Any, after: str) -> None:
        if after != "step":
            return
        if progress.step == 1 and not started:
            started.append(time.perf_counter())  # the first step also builds the workers: not counted
        elif progress.step == measured and len(started) == 1:
            started.append(time.perf_counter())
            per_step = (started[1] - started[0]) / (measured - 1)
            per_epoch = per_step * steps / config.train.epochs
            on_note(f"about {_minutes(per_epoch)} per epoch on this machine, {_minutes(per_step * steps)} for "
                    f"{config.train.epochs} epochs (from the first steps)")

    try:
        progress = train(config, hooks=[estimate])
    except KeyboardInterrupt:
        raise Interrupted(interrupted_advice(Path(config.out))) from None
    return TrainOutcome(Path(config.out), progress, os.environ.get("RANK", "0") == "0")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _uses_entities(model: str) -> bool:
    from uglspot.model.spotter import VARIANTS

    return bool(VARIANTS.get(model, {}).get("use_entities"))


def _weights_reason(model: str) -> str | None:
    """None when the ImageNet weights of ``model``'s backbone can be loaded
    now (the Hugging Face cache, or the hub answers), else why not."""
    import timm

    from uglspot.hub import offline_reason
    from uglspot.model.spotter import VARIANTS

    variant = VARIANTS.get(model)
    if variant is None:
        return None  # an unknown name: create_model's own error names the variants
    hub_id = getattr(timm.models.get_pretrained_cfg(variant["backbone"]), "hf_hub_id", None)
    if hub_id is None:
        return f"timm has no weights for {variant['backbone']}"
    return offline_reason(hub_id, ("model.safetensors", "pytorch_model.bin"))
