"""The global-only model that a UGL run already holds.

With ``isolate_global`` (the UGL recipe), a UGL model's backbone and global
head train exactly as the global-only model with the same seed, data and
options: nothing of the entity branch reaches them, and the branch draws its
random numbers from a side stream (``tests/test_model_global_head.py``). One
UGL run therefore trains both models. :func:`write_global_only_run` writes
the run folder that training the global-only model alone would have ended
with: the UGL run's backbone and global head as that model's weights, and
its class thresholds chosen by its own validation pass, as training does.
The demo uses it instead of training the global-only variant a second time.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import torch

from uglspot.engine.config import RunConfig, saved_config_text
from uglspot.errors import UserError

# What the backbone and the global head are built and trained from; every other model option belongs to
# the entity branch, the fused head or the head mix.
GLOBAL_PATH_OPTIONS = ("num_classes", "backbone", "pretrained", "pretrained_file", "shift", "clip_len",
                       "gru_hidden_max", "dropout", "loss", "focal_gamma", "focal_alpha", "fg_weight",
                       "ce_average", "prior", "pixel_mean", "pixel_std")


def global_path_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's and the global head's weights of a UGL model with a
    global head, named as in the global-only model."""
    if getattr(model, "global_head", None) is None:
        raise UserError(f"model {model.config.name!r} has no global head (model option global_head): "
                        "it holds no global-only model")
    return {**{f"backbone.{k}": v for k, v in model.backbone.state_dict().items()},
            **{f"head.{k}": v for k, v in model.global_head.state_dict().items()}}


def _same_training(ugl: RunConfig, config: RunConfig) -> None:
    """Refuse a global-only ``config`` that would not have trained as the
    UGL run's global path did: data, sampling, schedule, seed and
    augmentation must be the same (the model and its entities aside)."""
    for section in ("dataset", "data", "augment", "optim", "train", "infer"):
        mine, theirs = getattr(config, section), getattr(ugl, section)
        if section == "data":
            mine, theirs = replace(mine, entities=None), replace(theirs, entities=None)
        if mine != theirs:
            keys = ([f.name for f in fields(mine) if getattr(mine, f.name) != getattr(theirs, f.name)]
                    if hasattr(mine, "__dataclass_fields__") else [])
            raise UserError(f"{config.out}: its {section} settings differ from the UGL run's "
                            f"({', '.join(keys) or section}); a global-only run is taken from a UGL run only "
                            "when it would have trained on the same clips with the same seed")


def write_global_only_run(ugl_config: RunConfig, config: RunConfig) -> Path:
    """Write the global-only run ``config`` (into ``config.out``) from the
    trained UGL run ``ugl_config``, without training it: the UGL model's
    ``last`` checkpoint gives the weights, then a validation pass chooses
    the class thresholds (the engine's own at the end of a run). The run
    holds ``config.yaml`` and a ``best`` checkpoint named after the UGL
    run's last epoch and step; it has no ``last`` (nothing to resume) and
    no training logs. Both runs must validate once, at the end (so that
    the best epoch is the last), and train alike (``_same_training``)."""
    from uglspot.engine.checkpoints import save_checkpoint
    from uglspot.engine.infer import InferenceModel, inference_settings, validation_predictions
    from uglspot.engine.evaluate import choose_class_thresholds
    from uglspot.engine.model_folder import load_model
    from uglspot.engine.runtime import pick_device
    from uglspot.engine.sources import frame_source, load_splits
    from uglspot.engine.state import load_state, resolve
    from uglspot.engine.train import RunPosition, build_model
    from uglspot.io import write_text_atomic

    _same_training(ugl_config, config)
    if config.train.val_every < config.train.epochs:
        raise UserError(f"{config.out}: train.val_every={config.train.val_every} validates before the last "
                        f"of {config.train.epochs} epochs, so the global-only run's best epoch is its own; "
                        "train it instead")
    last = resolve(Path(ugl_config.out) / "checkpoints", "last")
    ugl = load_model(last)
    if not ugl.config.isolate_global:
        raise UserError(f"{last}: model {ugl.config.name!r} trains without isolate_global, so its global head "
                        "is not the global-only model's; train the global-only model instead")
    progress = RunPosition(**load_state(last)["progress"])
    if progress.epoch < config.train.epochs:
        raise UserError(f"{last}: the UGL run stopped after epoch {progress.epoch} of {config.train.epochs}; "
                        f"finish it first (uglspot train --resume {ugl_config.out})")
    splits = load_splits(config)
    model = build_model(config, len(splits.classes))
    differ = [k for k in GLOBAL_PATH_OPTIONS if getattr(model.config, k) != getattr(ugl.config, k)]
    if differ:
        raise UserError(f"{config.out}: model {config.model.name!r} differs from {ugl.config.name!r} in "
                        f"{', '.join(differ)}; its weights cannot come from the UGL run's global path")
    model.load_state_dict(global_path_state(ugl), strict=True)
    device = pick_device(config.train.device, option="train.device")
    model = model.to(device).eval()
    settings = inference_settings(config, splits.classes, splits.train)
    if splits.val:
        frames = frame_source(config, splits.val)
        predictions = validation_predictions(InferenceModel(model, settings), splits.val, frames, None, device,
                                             f"validate {config.model.name} (from the UGL run)")
        choose_class_thresholds(settings, splits.val, predictions, splits.classes)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.yaml", saved_config_text(config))
    save_checkpoint(out, "best", model, progress, settings, None)
    return out
