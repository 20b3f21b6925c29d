"""The global branch: a timm 2D backbone with temporal shift, run on every
frame of a clip, giving the pooled environment feature f_env and the last
spatial map (for RoIAlign of entity boxes).

Only timm's public API is used: ``timm.create_model(name, pretrained=...,
num_classes=0)``, ``forward_features`` and ``forward_head(pre_logits=True)``,
``num_features`` and ``feature_info``.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from uglspot.errors import UserError, brief
from uglspot.model.shift import ShiftKind, insert_temporal_shift


def create_timm_backbone(name: str, pretrained: bool, pretrained_file: str | None = None) -> nn.Module:
    """A timm model without classifier. With ``pretrained`` its ImageNet
    weights come from ``pretrained_file`` when given, else from the Hugging
    Face cache or hub; when neither has them the error says how to get them."""
    if not timm.is_model(name):
        raise UserError(f"backbone {name!r} is not a timm model; e.g. regnety_008, regnety_002, resnet50")
    kwargs: dict = {"pretrained": pretrained, "num_classes": 0}
    if pretrained and pretrained_file:
        if not Path(pretrained_file).is_file():
            raise UserError(f"pretrained_file {pretrained_file}: file not found; give the path of the "
                            f"{name} ImageNet weights (.safetensors or .pth) or set pretrained: false")
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
    hub_id = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None) if pretrained else None

    def failed(reason: str) -> UserError:
        hint = (f"on a machine with internet run `python -c \"import timm; timm.create_model('{name}', "
                f"pretrained=True)\"` and copy its Hugging Face cache (~/.cache/huggingface/hub"
                f"{f', repo {hub_id}' if hub_id else ''}) here, or download the weights file and set "
                "pretrained_file (model.options.pretrained_file=PATH in a training config), or set "
                "pretrained: false (--set model.options.pretrained=false) to start from random weights")
        return UserError(f"ImageNet weights for backbone {name} could not be loaded ({reason}); {hint}")

    if hub_id and not pretrained_file:
        from uglspot.hub import offline_reason

        reason = offline_reason(hub_id, ("model.safetensors", "pytorch_model.bin"))
        if reason is not None:  # fail now, not after a minute of download retries
            raise failed(reason)
    try:
        return timm.create_model(name, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        if not pretrained:
            raise
        raise failed(f"{type(exc).__name__}: {brief(exc, 160)}") from None


class Backbone(nn.Module):
    """timm backbone + temporal shift over clips of a fixed length.

    ``feat_dim`` is the width D of f_env, ``map_dim`` the channels C' of the
    spatial map and ``map_stride`` its stride in pixels.
    """

    def __init__(self, name: str, shift: ShiftKind, clip_len: int, pretrained: bool = False,
                 pretrained_file: str | None = None):
        super().__init__()
        self.net = create_timm_backbone(name, pretrained, pretrained_file)
        self.clip_len = clip_len
        self.shift = shift
        self.shifted = insert_temporal_shift(self.net, shift, clip_len)
        self.feat_dim = int(self.net.num_features)
        self.map_dim = int(self.net.num_features)
        self.map_stride = int(self.net.feature_info[-1]["reduction"])

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames: (B, T, 3, H, W) normalised, T <= clip_len when a shift is
        used → f_env (B, T, D) and map (B·T, C', h, w)."""
        B, T, C, H, W = frames.shape
        padded = T
        if self.shift != "none":
            if T > self.clip_len:
                raise ValueError(f"clip of {T} frames is longer than the model's clip_len {self.clip_len}")
            padded = self.clip_len
            frames = F.pad(frames, (0, 0, 0, 0, 0, 0, 0, padded - T))  # zero frames at the end
        x = frames.reshape(B * padded, C, H, W)
        fmap = self.net.forward_features(x)  # (B·T', C', h, w)
        pooled = self.net.forward_head(fmap, pre_logits=True)  # (B·T', D)
        f_env = pooled.reshape(B, padded, -1)[:, :T]  # (B, T, D)
        if padded != T:
            fmap = fmap.reshape(B, padded, *fmap.shape[1:])[:, :T].reshape(B * T, *fmap.shape[1:])
        return f_env, fmap
