"""Conversion of released E2E-Spot checkpoints (Hong et al., ECCV 2022) into
uglspot models.

E2E-Spot saves ``torch.save(model.state_dict())`` of a module with
``_features`` (a timm RegNet-Y whose blocks' ``conv1`` is wrapped by a
gate-shift holding ``net`` and ``gsm.{bn,conv3D}``; ``head.fc`` replaced by an
identity) and ``_pred_fine`` (``_gru``, then ``_fc_out._fc_out``), beside a
``config.json`` with ``feature_arch`` (e.g. ``rny008_gsm``),
``temporal_arch``, ``modality``, ``clip_len`` and ``num_classes`` (K, without
the background class).

Its GSM writes the two gated halves back in an interleaved channel order; the
converter folds that fixed permutation into the input channels of the
following 1×1 convolution, so the uglspot GSM (natural order) gives the same
logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from uglspot.errors import UserError, listed
from uglspot.model.shift import GateShift, ShiftThenConv, first_conv2d
from uglspot.model.spotter import UGLSpotter

ARCHES = {"rny002": "regnety_002", "rny008": "regnety_008"}
SHIFTS = {"gsm": "gsm", "": "none"}

# Their name fragment → ours, applied in order to every key.
KEY_RULES = (
    ("_features.", "backbone.net."),
    (".conv1.net.", ".conv1.inner."),
    (".conv1.gsm.conv3D.", ".conv1.shift.gate."),
    (".conv1.gsm.bn.", ".conv1.shift.bn."),
    ("_pred_fine._gru.", "head.gru."),
    ("_pred_fine._fc_out._fc_out.", "head.fc."),
)


@dataclass(frozen=True)
class E2ESpotSetup:
    arch: str  # rny002 | rny008
    shift: str  # gsm | none
    clip_len: int
    num_classes: int  # K
    dataset: str | None


def parse_e2e_spot_config(config: Any, where: str) -> E2ESpotSetup:
    """Check an E2E-Spot config.json for a model uglspot can reproduce."""
    arch, shift, clip_len, num_classes = check_family_config(
        config, where, what="an E2E-Spot config object with feature_arch, clip_len, ...",
        missing="is this the config.json of an E2E-Spot model?", modality_hint="; use the *_rgb model",
        owner="E2E-Spot's")
    return E2ESpotSetup(arch, shift, clip_len, num_classes, config.get("dataset"))


def check_family_config(config: Any, where: str, what: str, missing: str, modality_hint: str,
                        owner: str) -> tuple[str, str, int, int]:
    """The fields E2E-Spot's config.json and its forks' (the released UGL
    code) share, checked for a model uglspot reproduces → (arch, shift,
    clip_len, num_classes K). The texts name the source in the errors:
    ``what`` the expected object, ``missing`` the question after a missing
    key, ``modality_hint`` the advice after a non-RGB modality, ``owner``
    whose GRU head and TSM the errors name ("E2E-Spot's")."""
    if not isinstance(config, dict):
        raise UserError(f"{where}: expected {what}")
    for key in ("feature_arch", "temporal_arch", "clip_len", "num_classes"):
        if key not in config:
            raise UserError(f"{where}: key {key!r} missing; {missing}")
    modality = config.get("modality", "rgb")
    if modality != "rgb":
        raise UserError(f"{where}: modality {modality!r}: uglspot reads RGB frames only{modality_hint}")
    if config["temporal_arch"] != "gru":
        raise UserError(f"{where}: temporal_arch {config['temporal_arch']!r}: only {owner} 1-layer "
                        f"bidirectional 'gru' head is supported")
    feature_arch = str(config["feature_arch"])
    arch, _, suffix = feature_arch.partition("_")
    if arch not in ARCHES or suffix not in SHIFTS:
        hint = (f" ({owner} TSM shifts in place, so its residual path differs from uglspot's TSM)"
                if suffix == "tsm" else "")
        raise UserError(f"{where}: feature_arch {feature_arch!r} is not supported{hint}; supported: "
                        f"{', '.join(a + ('_' + s if s else '') for a in ARCHES for s in SHIFTS)}")
    clip_len, num_classes = config["clip_len"], config["num_classes"]
    if not isinstance(clip_len, int) or clip_len < 1 or not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(f"{where}: clip_len and num_classes must be positive integers")
    return arch, SHIFTS[suffix], clip_len, num_classes


def target_variant(setup: E2ESpotSetup, into: str | None) -> str:
    """e2e_<arch>, or the UGL variant ``into`` when its backbone matches."""
    if into is None:
        return f"e2e_{setup.arch}"
    if not into.startswith("ugl_"):
        raise UserError(f"--into {into}: choose a UGL variant (ugl_rny002 or ugl_rny008); "
                        f"without --into the checkpoint becomes e2e_{setup.arch}")
    if into not in (f"ugl_{setup.arch}", f"ugl_paper_{setup.arch}"):
        raise UserError(f"--into {into}: the checkpoint's backbone is {setup.arch} ({ARCHES[setup.arch]}); "
                        f"use --into ugl_{setup.arch} (or ugl_paper_{setup.arch})")
    return into


def converted_prefixes(model: UGLSpotter) -> tuple[str, str]:
    """The weights an E2E-Spot checkpoint gives ``model``: the backbone and the
    head on f_env (the global head of a UGL model that has one, else its
    only GRU head)."""
    return ("backbone.", "global_head." if model.global_head is not None else "head.")


def _rename(key: str) -> str:
    for theirs, ours in KEY_RULES:
        key = key.replace(theirs, ours)
    return key


def _gsm_output_order(fold: int) -> torch.Tensor:
    """For E2E-Spot's GSM output channel o, the natural channel it holds."""
    quarter = fold // 4
    o = torch.arange(fold // 2)
    half = (o % 2) * quarter + o // 2
    return torch.cat([half, half + fold // 2])


def convert_e2e_spot_state(state: dict[str, torch.Tensor], model: UGLSpotter,
                           where: str) -> dict[str, torch.Tensor]:
    """E2E-Spot weights → the backbone and head weights of ``model``.

    Every checkpoint key must map to a model key of the same shape, and every
    backbone/head key of the model must be covered; otherwise a UserError
    names the offending keys.
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel
    prefixes = converted_prefixes(model)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in state.items():
        name = _rename(key)
        if model.global_head is not None and name.startswith("head."):
            name = "global_" + name  # E2E-Spot's head is the global head of a UGL model that has one
        if name not in own:
            unknown.append(key)
        else:
            converted[name] = tensor
    if unknown:
        raise UserError(f"{where}: {len(unknown)} key(s) that a {model.config.name} model does not have "
                        f"({listed(unknown)}); is this an E2E-Spot {model.config.backbone} checkpoint "
                        f"matching its config.json?")
    missing = sorted(set(own) - set(converted))
    if missing:
        raise UserError(f"{where}: {len(missing)} weight(s) missing for a {model.config.name} model "
                        f"({listed(missing)}); the checkpoint is incomplete or of another architecture")
    for name, tensor in converted.items():
        if tensor.shape != own[name].shape:
            raise UserError(f"{where}: {name} has shape {tuple(tensor.shape)}, the model expects "
                            f"{tuple(own[name].shape)}; does config.json (num_classes, feature_arch) match?")
    undo_gsm_order(converted, model, where)
    return {k: v.to(own[k].dtype) for k, v in converted.items()}


def undo_gsm_order(converted: dict[str, torch.Tensor], model: UGLSpotter, where: str) -> None:
    """Fold E2E-Spot's interleaved GSM output order into the input channels
    of the conv after each GSM of ``model``, in ``converted`` (uglspot key
    names) in place. The released UGL code shares this GSM."""
    for path, module in model.named_modules():
        if isinstance(module, ShiftThenConv) and isinstance(module.shift, GateShift):
            conv = first_conv2d(module.inner)
            conv_name = next(n for n, m in module.inner.named_modules() if m is conv)
            key = f"{path}.inner.{conv_name}.weight" if conv_name else f"{path}.inner.weight"
            if conv.groups != 1:
                raise UserError(f"{where}: cannot undo the GSM channel order before grouped conv {key}")
            fold = module.shift.fold
            weight = converted[key].clone()
            weight[:, _gsm_output_order(fold)] = converted[key][:, :fold]
            converted[key] = weight


def load_converted(model: UGLSpotter, converted: dict[str, torch.Tensor]) -> None:
    """Load converted backbone/head weights; the rest of a UGL model keeps its init."""
    result = model.load_state_dict(converted, strict=False)
    left = [k for k in result.missing_keys if k.startswith(converted_prefixes(model))]
    if left or result.unexpected_keys:
        raise RuntimeError(f"conversion left {left[:3]} / unexpected {result.unexpected_keys[:3]}")
