"""Focal loss (UGL eq. 6–10) and weighted cross-entropy against their formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.model.loss import focal_loss, weighted_cross_entropy


def _case(soft: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 6, 4, generator=g, dtype=torch.float64) * 3
    if soft:
        targets = torch.softmax(torch.randn(2, 6, 4, generator=g, dtype=torch.float64) * 2, dim=-1)
    else:
        targets = F.one_hot(torch.randint(0, 4, (2, 6), generator=g), 4).double()
    return logits, targets


def focal_by_formula(logits, y, gamma, alpha):
    """Element by element, exactly as the paper writes it (with eq. 8 fixed)."""
    B, T, K1 = logits.shape
    total = 0.0
    for b in range(B):
        frame_sum = 0.0
        for t in range(T):
            for k in range(K1):
                p = 1 / (1 + torch.exp(-logits[b, t, k]))
                yy = y[b, t, k]
                bce = -(yy * torch.log(p) + (1 - yy) * torch.log(1 - p))
                y_star = p * yy + (1 - p) * (1 - yy)
                a = 1.0 if alpha is None else alpha * yy + (1 - alpha) * (1 - yy)
                frame_sum = frame_sum + a * (1 - y_star) ** gamma * bce
        total = total + frame_sum / T
    return total / B


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("gamma, alpha", [(5.0, None), (2.0, 0.25), (0.0, 0.75), (4.0, None)])
def test_focal_loss_equals_formula(soft, gamma, alpha):
    logits, targets = _case(soft)
    got = focal_loss(logits, targets, gamma=gamma, alpha=alpha)
    torch.testing.assert_close(got.double(), focal_by_formula(logits, targets, gamma, alpha), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("soft", [False, True])
def test_focal_loss_is_bce_at_gamma_zero_without_alpha(soft):
    logits, targets = _case(soft, seed=3)
    bce = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").sum(-1).mean()
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), bce)


def test_focal_loss_down_weights_easy_frames():
    targets = F.one_hot(torch.zeros(1, 1, dtype=torch.long), 3).float()
    easy = torch.tensor([[[6.0, -6.0, -6.0]]])
    hard = torch.tensor([[[-1.0, 1.0, -1.0]]])
    ratio_fl = focal_loss(easy, targets) / focal_loss(hard, targets)
    ratio_bce = focal_loss(easy, targets, gamma=0.0) / focal_loss(hard, targets, gamma=0.0)
    assert ratio_fl < ratio_bce * 1e-3


@pytest.mark.parametrize("soft", [False, True])
def test_weighted_cross_entropy_equals_formula(soft):
    logits, targets = _case(soft, seed=5)
    w = torch.tensor([1.0, 5.0, 5.0, 5.0], dtype=torch.float64)
    want = -(w * targets * torch.log_softmax(logits, -1)).sum(-1).mean()
    torch.testing.assert_close(weighted_cross_entropy(logits, targets, fg_weight=5.0).double(), want,
                               rtol=1e-5, atol=1e-6)
