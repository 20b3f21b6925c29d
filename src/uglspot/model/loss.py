"""Per-frame losses over K+1 columns (column 0 is "no event"); targets are
one-hot or soft (mixup) distributions of the same shape as the logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 5.0,
               alpha: float | None = None) -> torch.Tensor:
    """Focal loss of the UGL paper (eq. 6–10) on per-class sigmoids.

    logits, targets (B, T, K+1). For each frame and class, with p the sigmoid
    and y the target, BCE = −[y log p + (1−y) log(1−p)], y* = p·y + (1−p)(1−y)
    and FL = α*·(1−y*)^γ·BCE with α* = α·y + (1−α)(1−y) (1 without α). FL is
    summed over the K+1 classes and averaged over the frames of the batch.
    """
    B, T, K1 = logits.shape
    logits = logits.float()
    targets = targets.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_true = p * targets + (1 - p) * (1 - targets)
    loss = (1 - p_true).pow(gamma) * bce
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum(dim=-1).mean()


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, fg_weight: float = 5.0,
                           average: str = "frames") -> torch.Tensor:
    """E2E-Spot's loss: softmax cross-entropy with weight 1 on "no event" and
    ``fg_weight`` on every event class.

    logits, targets (B, T, K+1); soft targets give −Σ_k w_k y_k log softmax_k
    per frame. ``average`` "frames": the mean over frames; "weights": the sum
    divided by Σ_frames Σ_k w_k y_k, which for one-hot targets is what
    ``F.cross_entropy`` with class-index targets and weights computes, as
    E2E-Spot and the released UGL code train without mixup.
    """
    B, T, K1 = logits.shape
    weight = torch.full((K1,), float(fg_weight), device=logits.device)
    weight[0] = 1.0
    flat = targets.float().reshape(B * T, K1)
    loss = F.cross_entropy(logits.float().reshape(B * T, K1), flat, weight=weight, reduction="sum")
    if average == "weights":
        return loss / (flat * weight).sum()
    return loss / (B * T)
