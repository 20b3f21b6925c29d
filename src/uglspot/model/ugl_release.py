"""Conversion of checkpoints made by the released UGL code (Fsoft-AIC's
unifying-global-local-feature, ``train_e2e.py``) into uglspot models.

The release is a fork of E2E-Spot: it saves ``torch.save(model.state_dict())``
as ``checkpoint_NNN.pt`` with the same ``_features`` (timm RegNet-Y + GSM)
and ``_pred_fine`` (GRU head) as E2E-Spot, plus, when trained with GLIP
features (``glip_feature: true`` in its ``config.json``), ``_fuse`` (its
``ObjectFusion``: ``_env_norm``/``_env_linear``, ``_obj_norm``/``_obj_linear``,
the encoders ``_obj_fuser`` and ``_env_obj_fuser`` and ``_obj_env_norm``,
which its forward never uses). A model with GLIP features becomes
``uglr_<arch>`` (the release's layers, ``uglspot.model.release``); one
without becomes ``e2e_<arch>``. Its ``label_type`` picks the loss: one_hot
trains the sigmoid focal loss with its ``alpha`` and ``gamma`` (a negative
alpha: none), integer the cross-entropy with foreground weight 5,
averaged as PyTorch averages class-index targets with weights (by the sum
of the frames' weights, ``ce_average: weights``), or over frames when it
trained with mixup's soft targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from uglspot.errors import UserError
from uglspot.model.e2e_spot import KEY_RULES, _rename, check_family_config, undo_gsm_order
from uglspot.model.spotter import UGLSpotter

# The release's ObjectFusion → the uglr_* modules, applied in order.
FUSION_RULES = (
    ("_fuse._env_norm.", "env_proj.0."),
    ("_fuse._env_linear.", "env_proj.1."),
    ("_fuse._obj_norm.", "entity_tokens.norm."),
    ("_fuse._obj_linear.", "entity_tokens.proj."),
    ("_fuse._obj_fuser.encoder_layers.", "aam.encoder.layers."),
    ("_fuse._obj_fuser.norm.", "aam.encoder.norm."),
    ("_fuse._env_obj_fuser.encoder_layers.", "fusion.encoder.layers."),
    ("_fuse._env_obj_fuser.norm.", "fusion.encoder.norm."),
)
# Built by the release's ObjectFusion but never read by its forward: dropped.
UNUSED = ("_fuse._obj_env_norm.",)


@dataclass(frozen=True)
class ReleaseSetup:
    variant: str  # uglr_<arch> or e2e_<arch>
    arch: str
    shift: str
    clip_len: int
    num_classes: int  # K
    overrides: dict[str, Any]  # SpotterConfig fields from the release config (loss, shift, clip_len)
    dataset: str | None
    crop_dim: int | None


def parse_release_config(config: Any, where: str) -> ReleaseSetup:
    """Check a release ``config.json`` (written by its train_e2e.py) for a model uglspot reproduces."""
    arch, shift, clip_len, num_classes = check_family_config(
        config, where, what="the released UGL code's config object (feature_arch, clip_len, ...)",
        missing="is this the config.json that the released UGL code's train_e2e.py wrote beside its checkpoints?",
        modality_hint="", owner="the release's")
    label_type = config.get("label_type", "integer")
    overrides: dict[str, Any] = {"clip_len": clip_len, "shift": shift}
    if label_type == "one_hot":
        alpha, gamma = config.get("alpha", 0.25), config.get("gamma", 2.0)
        if not isinstance(alpha, (int, float)) or not isinstance(gamma, (int, float)) or alpha > 1 or gamma < 0:
            raise UserError(f"{where}: alpha {alpha!r} and gamma {gamma!r} must be numbers, alpha ≤ 1, gamma ≥ 0")
        overrides.update(loss="focal", focal_alpha=float(alpha) if alpha >= 0 else None, focal_gamma=float(gamma))
    elif label_type == "integer":
        # Cross-entropy on class indices averages by the frames' weights; with mixup (which the release
        # turns off when it reads GLIP features) the targets are distributions and the mean is over frames.
        mixup = bool(config.get("mixup")) and not config.get("glip_feature")
        overrides.update(loss="ce", fg_weight=5.0, ce_average="frames" if mixup else "weights")
    else:
        raise UserError(f"{where}: label_type {label_type!r}: expected one_hot or integer")
    variant = f"uglr_{arch}" if config.get("glip_feature") else f"e2e_{arch}"
    crop = config.get("crop_dim")
    return ReleaseSetup(variant, arch, shift, clip_len, num_classes, overrides, config.get("dataset"),
                        crop if isinstance(crop, int) and crop > 0 else None)


def release_key(key: str) -> str | None:
    """The uglspot name of a release key, or None for a key the release never uses."""
    if key.startswith(UNUSED):
        return None
    if key.startswith("_fuse."):
        for theirs, ours in FUSION_RULES:
            if key.startswith(theirs):
                return ours + key[len(theirs):]
        return key  # unknown: reported by the caller under its own name
    return _rename(key)


def expected_release_key(name: str) -> str:
    """The release key that gives uglspot weight ``name`` (for messages)."""
    for theirs, ours in FUSION_RULES:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    for theirs, ours in reversed(KEY_RULES):
        name = name.replace(ours, theirs)
    return name


def convert_release_state(state: dict[str, torch.Tensor], model: UGLSpotter,
                          where: str) -> dict[str, torch.Tensor]:
    """Release weights → every weight of ``model``.

    A key that maps to nothing, a weight of the model that no key gives, and
    a shape that differs are errors naming the key."""
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel
    own = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in state.items():
        name = release_key(key)
        if name is None:
            continue
        if name not in own:
            unknown.append(key)
        else:
            converted[name] = tensor
    if unknown:
        raise UserError(f"{where}: key {unknown[0]} has no place in a {model.config.name} model"
                        f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; is this a checkpoint of "
                        "the released UGL code matching its config.json (feature_arch, glip_feature)?")
    missing = sorted(set(own) - set(converted))
    if missing:
        raise UserError(f"{where}: key {expected_release_key(missing[0])} is missing (a {model.config.name} model "
                        f"needs it for {missing[0]}{f'; and {len(missing) - 1} more' if len(missing) > 1 else ''}); "
                        "the checkpoint is incomplete or of another architecture than its config.json says")
    for name, tensor in converted.items():
        if tensor.shape != own[name].shape:
            raise UserError(f"{where}: {name} has shape {tuple(tensor.shape)}, the model expects "
                            f"{tuple(own[name].shape)}; does config.json (num_classes, feature_arch) match?")
    undo_gsm_order(converted, model, where)
    return {k: v.to(own[k].dtype) for k, v in converted.items()}
