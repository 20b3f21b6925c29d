"""Temporal shift inside a 2D backbone: the Gate-Shift Module (GSM) and the
Temporal Shift Module (TSM), and their insertion into timm backbones.

Both modules see the frames of a batch of clips flattened as (B·T, C, H, W),
frames of one clip consecutive, and need the clip length T to find the clip
boundaries; the backbone pads shorter clips to that fixed length.

Insertion goes by what a block exposes, never by the class of a timm block:
the stages are the modules named in ``model.feature_info`` (timm's public
description of its feature stages); a block of a stage is any child (or
``stage.blocks`` entry) that has one of the attributes in
``FIRST_CONV_ATTRS``, and that attribute's module is wrapped so the shift runs
on the block's input just before its first convolution. The shortcut of the
block still sees the unshifted input.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ShiftKind = Literal["gsm", "tsm", "none"]

# Attribute naming the first convolution of a residual block, in the order they
# are tried: RegNet and ResNet blocks (`conv1`), ConvNeXt blocks (`conv_dw`).
FIRST_CONV_ATTRS = ("conv1", "conv_dw")


def gsm_fold(channels: int) -> int:
    """Channels that go through the GSM gate: a quarter of the input, rounded
    up to a multiple of 4 (two gated groups of an even size)."""
    return -(-(channels // 4) // 4) * 4


def _pad_time(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero-pad dim 1 of a (B, T, C, H, W) tensor."""
    return F.pad(x, (0, 0, 0, 0, 0, 0, before, after))


def _keep_layout(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


def _split_clips(x: torch.Tensor, clip_len: int) -> int:
    frames = x.shape[0]
    if frames % clip_len:
        raise ValueError(f"temporal shift: {frames} frames is not a whole number of clips of {clip_len}")
    return frames // clip_len


class GateShift(nn.Module):
    """Gate-Shift Module: a learned spatio-temporal gate decides, per pixel,
    how much of a quarter of the channels moves one frame back or forward.

    The gate is BatchNorm3d → ReLU → Conv3d(fold → 2, 3×3×3, two groups) →
    tanh, zero-initialised, so the module is the identity at the start. Gated
    first half of the fold channels moves toward t−1, the second half toward
    t+1 (zero padding at the clip ends); what the gate did not take stays in
    place.
    """

    def __init__(self, channels: int, clip_len: int):
        super().__init__()
        self.channels = channels
        self.clip_len = clip_len
        self.fold = gsm_fold(channels)
        if not 0 < self.fold <= channels:
            raise ValueError(f"GSM needs at least 4 input channels, got {channels}")
        self.bn = nn.BatchNorm3d(self.fold)
        self.relu = nn.ReLU()
        self.gate = nn.Conv3d(self.fold, 2, kernel_size=3, padding=1, groups=2)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B·T, C, H, W) → (B·T, C, H, W)."""
        N, C, H, W = x.shape
        T, fold, half = self.clip_len, self.fold, self.fold // 2
        B = _split_clips(x, T)
        gated_in = x[:, :fold].reshape(B, T, fold, H, W)  # (B, T, F, H, W)
        z = self.relu(self.bn(gated_in.transpose(1, 2)))  # (B, F, T, H, W)
        if z.device.type == "cpu" and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            # oneDNN runs this small grouped Conv3d (2 output channels) about 3.5x faster, forward
            # and backward, on channels-last input (NDHWC); the sums differ by rounding only
            # (tests/test_model_shift.py). GPUs keep the layout they were measured with; an ONNX
            # graph has no memory formats (the runtime picks its own).
            z = z.contiguous(memory_format=torch.channels_last_3d)
        gate = torch.tanh(self.gate(z)).to(x.dtype)  # (B, 2, T, H, W)
        gate = gate.transpose(1, 2).unsqueeze(3)  # (B, T, 2, 1, H, W)
        groups = gated_in.reshape(B, T, 2, half, H, W)
        moving = groups * gate  # (B, T, 2, F/2, H, W)
        toward_prev = _pad_time(moving[:, 1:, 0], 0, 1)  # frame t takes t+1
        toward_next = _pad_time(moving[:, :-1, 1], 1, 0)  # frame t takes t−1
        shifted = torch.stack([toward_prev, toward_next], dim=2)  # (B, T, 2, F/2, H, W)
        out = (groups - moving + shifted).reshape(N, fold, H, W)
        return _keep_layout(torch.cat([out, x[:, fold:]], dim=1), x)


class TemporalShift(nn.Module):
    """Temporal Shift Module: an eighth of the channels moves one frame toward
    t−1, the next eighth toward t+1, zero padding at the clip ends. It has no
    parameters and does not touch its input in place."""

    def __init__(self, channels: int, clip_len: int, fold_div: int = 8):
        super().__init__()
        self.channels = channels
        self.clip_len = clip_len
        self.fold = channels // fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B·T, C, H, W) → (B·T, C, H, W)."""
        N, C, H, W = x.shape
        B = _split_clips(x, self.clip_len)
        fold = self.fold
        v = x.reshape(B, self.clip_len, C, H, W)
        toward_prev = _pad_time(v[:, 1:, :fold], 0, 1)
        toward_next = _pad_time(v[:, :-1, fold:2 * fold], 1, 0)
        out = torch.cat([toward_prev, toward_next, v[:, :, 2 * fold:]], dim=2)  # (B, T, C, H, W)
        return _keep_layout(out.reshape(N, C, H, W), x)


class ShiftThenConv(nn.Module):
    """Runs ``shift`` on the input of ``inner`` (a block's first conv)."""

    def __init__(self, shift: nn.Module, inner: nn.Module):
        super().__init__()
        self.shift = shift
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B·T, C, H, W) → whatever ``inner`` returns."""
        return self.inner(self.shift(x))


def to_channels_last(module: nn.Module) -> nn.Module:
    """Put every 4-D parameter and buffer of ``module`` in channels_last.

    ``Module.to(memory_format=torch.channels_last)`` refuses a model that also
    holds 5-D weights (the GSM gate's Conv3d); this converts the 4-D ones only.
    """
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def first_conv2d(module: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in ``module`` (itself or a submodule)."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub
    raise ValueError(f"{type(module).__name__} holds no Conv2d")


def _stage_blocks(stage: nn.Module) -> list[tuple[str, nn.Module]]:
    container = getattr(stage, "blocks", None)
    if isinstance(container, nn.Module):
        return [(f"blocks.{name}", block) for name, block in container.named_children()]
    return list(stage.named_children())


def shift_sites(net: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(block path, block, first-conv attribute) of every block in the stages
    that ``net.feature_info`` names."""
    info = getattr(net, "feature_info", None)
    if not info:
        raise ValueError(f"{type(net).__name__} has no timm feature_info; cannot find its stages")
    modules = dict(net.named_modules())
    sites = []
    for entry in info:
        stage_name = entry["module"]
        stage = modules.get(stage_name)
        if stage is None:
            raise ValueError(f"feature_info names stage {stage_name!r} that the model does not have")
        for block_name, block in _stage_blocks(stage):
            attr = next((a for a in FIRST_CONV_ATTRS if isinstance(getattr(block, a, None), nn.Module)), None)
            if attr is not None:
                sites.append((f"{stage_name}.{block_name}", block, attr))
    return sites


def insert_temporal_shift(net: nn.Module, kind: ShiftKind, clip_len: int) -> list[str]:
    """Wrap the first conv of every block of every stage of a timm backbone
    with a GSM or TSM. Returns the wrapped module paths (empty for "none")."""
    if kind == "none":
        return []
    if kind not in ("gsm", "tsm"):
        raise ValueError(f"unknown temporal shift {kind!r}; use gsm, tsm or none")
    if clip_len < 1:
        raise ValueError(f"temporal shift needs a positive clip length, got {clip_len}")
    sites = shift_sites(net)
    if not sites:
        raise ValueError(
            f"{type(net).__name__}: no block in its stages exposes a first conv "
            f"({', '.join(FIRST_CONV_ATTRS)}); temporal shift cannot be inserted")
    wrapped = []
    for path, block, attr in sites:
        inner = getattr(block, attr)
        channels = first_conv2d(inner).in_channels
        shift = GateShift(channels, clip_len) if kind == "gsm" else TemporalShift(channels, clip_len)
        setattr(block, attr, ShiftThenConv(shift, inner))
        wrapped.append(f"{path}.{attr}")
    return wrapped
