"""Training augmentation of whole clips, batched on the device.

Every random choice is per clip (all frames of a clip get the same crop, flip
and colour change, so motion is untouched) and comes from one numpy
``Generator`` the training loop owns and checkpoints, so a resumed run draws
the same augmentations. Entity boxes move with the frames: cropped, flipped,
and on mixup the blended clip carries the union of both clips' entities.

Order: crop (uint8, cheapest first) → float in [0, 1] → flip → hue,
saturation, brightness, contrast (each with probability ``jitter_p``) →
Gaussian blur (``blur_p``) → mixup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from uglspot.entities.batch import EntityBatch


@dataclass
class AugmentConfig:
    crop: list[int] | None = None  # [height, width] of one random crop per clip; null keeps whole frames
    flip: bool = True
    jitter_p: float = 0.25  # probability of each of hue, saturation, brightness, contrast
    hue: float = 0.2  # hue shift uniform in [-hue, hue] (fraction of the colour wheel)
    saturation: list[float] = field(default_factory=lambda: [0.7, 1.2])
    brightness: list[float] = field(default_factory=lambda: [0.7, 1.2])
    contrast: list[float] = field(default_factory=lambda: [0.7, 1.2])
    blur_p: float = 0.25
    blur_kernel: int = 5
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    mixup: bool = True
    mixup_alpha: float = 0.2


def normalize(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(B, T, 3, H, W) floats in [0, 1] → normalised with per-channel mean/std
    (given in [0, 1] units). The one normalisation of training and inference."""
    mean_t = torch.tensor(mean, device=frames.device, dtype=frames.dtype).view(1, 1, 3, 1, 1)
    std_t = torch.tensor(std, device=frames.device, dtype=frames.dtype).view(1, 1, 3, 1, 1)
    return (frames - mean_t) / std_t


def crop_clips(
    frames: torch.Tensor, entities: EntityBatch | None, size: tuple[int, int], top: np.ndarray, left: np.ndarray,
) -> tuple[torch.Tensor, EntityBatch | None]:
    """frames (B, T, 3, H, W) → the (height, width) window at (top[b], left[b])
    of each clip, boxes re-expressed in the crop and the ones cut away
    masked. The one crop of training (random windows) and inference (the
    centre)."""
    B, T, C, H, W = frames.shape
    ch, cw = min(size[0], H), min(size[1], W)
    cropped = torch.stack([frames[b, :, :, top[b]:top[b] + ch, left[b]:left[b] + cw] for b in range(B)])
    if entities is None:
        return cropped, None
    device = entities.boxes.device
    offset = torch.tensor(np.stack([left / W, top / H, left / W, top / H], 1), dtype=torch.float32, device=device)
    scale = torch.tensor([W / cw, H / ch, W / cw, H / ch], dtype=torch.float32, device=device)
    boxes = ((entities.boxes - offset.view(B, 1, 1, 4)) * scale).clamp(0.0, 1.0)  # (B, T, N, 4)
    visible = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    return cropped, replace(entities, boxes=boxes, mask=entities.mask & visible)


def random_crop(
    frames: torch.Tensor, entities: EntityBatch | None, size: tuple[int, int], rng: np.random.Generator,
) -> tuple[torch.Tensor, EntityBatch | None]:
    """One random (height, width) window per clip (see :func:`crop_clips`)."""
    B, T, C, H, W = frames.shape
    ch, cw = min(size[0], H), min(size[1], W)
    return crop_clips(frames, entities, size, rng.integers(0, H - ch + 1, size=B), rng.integers(0, W - cw + 1, size=B))


def flip_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Mirror xyxy boxes in [0, 1] horizontally: x1' = 1 - x2, x2' = 1 - x1."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([1.0 - x2, y1, 1.0 - x1, y2], -1)


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) → (..., 1, H, W) luma (ITU-R 601)."""
    r, g, b = frames.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(-3)
    value, _ = rgb.max(-3)
    minimum, _ = rgb.min(-3)
    chroma = value - minimum
    saturation = torch.where(value > 0, chroma / value.clamp_min(1e-8), torch.zeros_like(value))
    safe = chroma.clamp_min(1e-8)
    hue = torch.where(value == r, ((g - b) / safe) % 6.0,
                      torch.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = torch.where(chroma > 0, hue / 6.0, torch.zeros_like(hue))
    return torch.stack([hue, saturation, value], -3)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = hsv.unbind(-3)
    k = torch.stack([(5.0 + hue * 6.0) % 6.0, (3.0 + hue * 6.0) % 6.0, (1.0 + hue * 6.0) % 6.0], -3)
    weight = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return value.unsqueeze(-3) - value.unsqueeze(-3) * saturation.unsqueeze(-3) * weight


def shift_hue(frames: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1], ``shift`` (B,) in colour-wheel fractions."""
    hsv = _rgb_to_hsv(frames)
    hue = (hsv[:, :, 0] + shift.view(-1, 1, 1, 1)) % 1.0
    return _hsv_to_rgb(torch.stack([hue, hsv[:, :, 1], hsv[:, :, 2]], 2))


def _blend(frames: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1, 1).to(frames.dtype)
    return (factor * frames + (1.0 - factor) * other).clamp(0.0, 1.0)


def gaussian_blur(frames: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Blur one clip (T, 3, H, W) with a separable Gaussian, reflecting at the borders."""
    T, C, H, W = frames.shape
    x = torch.arange(kernel, device=frames.device, dtype=frames.dtype) - (kernel - 1) / 2
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    weights = weights / weights.sum()
    pad = kernel // 2
    out = F.pad(frames, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, weights.view(1, 1, 1, kernel).expand(C, 1, 1, kernel), groups=C)
    return F.conv2d(out, weights.view(1, 1, kernel, 1).expand(C, 1, kernel, 1), groups=C)


def union_entities(first: EntityBatch, second: EntityBatch, slots: int) -> EntityBatch:
    """Both clips' entities on each frame; the ``slots`` highest scores kept."""
    score = torch.cat([first.score, second.score], -1)  # (B, T, 2N)
    mask = torch.cat([first.mask, second.mask], -1)
    ranked = torch.where(mask, score, torch.full_like(score, -torch.inf))
    order = ranked.sort(dim=-1, descending=True, stable=True).indices[..., :slots]  # (B, T, N)

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        both = torch.cat([a, b], 2)
        index = order if both.dim() == 3 else order.unsqueeze(-1).expand(*order.shape, both.shape[-1])
        return both.gather(2, index)

    feat = None if first.feat is None or second.feat is None else pick(first.feat, second.feat)
    return EntityBatch(boxes=pick(first.boxes, second.boxes), cls=pick(first.cls, second.cls),
                       score=pick(first.score, second.score), mask=pick(first.mask, second.mask), feat=feat)


def _select(entities: EntityBatch, index: torch.Tensor) -> EntityBatch:
    return EntityBatch(boxes=entities.boxes[index], cls=entities.cls[index], score=entities.score[index],
                       mask=entities.mask[index], feat=None if entities.feat is None else entities.feat[index])


class ClipAugment:
    """Augment a batch of clips: uint8 frames in, float frames in [0, 1] out."""

    def __init__(self, config: AugmentConfig, rng: np.random.Generator):
        self.config = config
        self.rng = rng

    def _uniform(self, bounds: list[float], size: int) -> np.ndarray:
        return self.rng.uniform(bounds[0], bounds[1], size=size)

    def __call__(
        self, frames: torch.Tensor, targets: torch.Tensor, entities: EntityBatch | None,
    ) -> tuple[torch.Tensor, torch.Tensor, EntityBatch | None]:
        """frames (B, T, 3, H, W) uint8, targets (B, T, K+1) → (frames float, targets, entities)."""
        B, T, C, H, W = frames.shape
        cfg, rng, device = self.config, self.rng, frames.device
        if cfg.crop is not None:
            frames, entities = random_crop(frames, entities, (cfg.crop[0], cfg.crop[1]), rng)
        frames = frames.float() / 255.0
        if cfg.flip:
            flip = torch.as_tensor(rng.random(B) < 0.5, device=device)
            frames = torch.where(flip.view(B, 1, 1, 1, 1), frames.flip(-1), frames)
            if entities is not None:
                boxes = torch.where(flip.view(B, 1, 1, 1), flip_boxes(entities.boxes), entities.boxes)
                entities = replace(entities, boxes=boxes)
        jitters = [
            ("hue", lambda x, f: shift_hue(x, f), [-cfg.hue, cfg.hue]),
            ("saturation", lambda x, f: _blend(x, grayscale(x), f), cfg.saturation),
            ("brightness", lambda x, f: (x * f.view(-1, 1, 1, 1, 1)).clamp(0.0, 1.0), cfg.brightness),
            ("contrast", lambda x, f: _blend(x, grayscale(x).mean((2, 3, 4), keepdim=True), f), cfg.contrast),
        ]
        for _name, apply, bounds in jitters:
            chosen = rng.random(B) < cfg.jitter_p
            factors = self._uniform(bounds, B)
            if chosen.any():
                index = torch.as_tensor(np.flatnonzero(chosen), device=device)
                factor = torch.as_tensor(factors[chosen], dtype=frames.dtype, device=device)
                frames = frames.index_copy(0, index, apply(frames[index], factor))
        blurred = rng.random(B) < cfg.blur_p
        sigmas = self._uniform(cfg.blur_sigma, B)
        for b in np.flatnonzero(blurred):
            frames[b] = gaussian_blur(frames[b], cfg.blur_kernel, float(sigmas[b]))
        if cfg.mixup and B > 1:
            frames, targets, entities = self._mixup(frames, targets, entities)
        return frames, targets, entities

    def _mixup(
        self, frames: torch.Tensor, targets: torch.Tensor, entities: EntityBatch | None,
    ) -> tuple[torch.Tensor, torch.Tensor, EntityBatch | None]:
        """Blend each clip with another clip of the batch (never itself)."""
        B = frames.shape[0]
        device = frames.device
        shift = int(self.rng.integers(1, B))
        partner = torch.as_tensor((np.arange(B) + shift) % B, device=device)
        lam = torch.as_tensor(self.rng.beta(self.config.mixup_alpha, self.config.mixup_alpha, size=B),
                              dtype=frames.dtype, device=device)
        frames = lam.view(B, 1, 1, 1, 1) * frames + (1 - lam.view(B, 1, 1, 1, 1)) * frames[partner]
        targets = lam.view(B, 1, 1).to(targets.dtype) * targets + (1 - lam.view(B, 1, 1).to(targets.dtype)) * targets[partner]
        if entities is not None:
            entities = union_entities(entities, _select(entities, partner), entities.mask.shape[-1])
        return frames, targets, entities
