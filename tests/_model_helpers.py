"""Tiny spotter inputs shared by the model tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uglspot.entities.batch import EntityBatch
from uglspot.model.shift import GateShift

TINY = {"clip_len": 4}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and far faster than several
    threads on a machine whose few cores other jobs share."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
B, T, H, W, N = 2, 4, 32, 48, 3


def tiny_inputs(seed: int = 0, feat_dim: int | None = None, frames: int = T):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, frames, 3, H, W, generator=g)
    entities = EntityBatch.empty(B, frames, N, feat_dim)
    xy = torch.rand(B, frames, N, 2, generator=g) * 0.5
    entities.boxes = torch.cat([xy, xy + 0.2 + 0.3 * torch.rand(B, frames, N, 2, generator=g)], dim=-1)
    entities.cls = torch.randint(0, 6, (B, frames, N), generator=g)
    entities.score = torch.rand(B, frames, N, generator=g)
    entities.mask = torch.rand(B, frames, N, generator=g) < 0.7
    entities.mask[:, :, 0] = True
    entities.mask[0, 1] = False  # a frame with no entity
    if feat_dim is not None:
        entities.feat = torch.randn(B, frames, N, feat_dim, generator=g)
    return x, entities


def open_gates(model: nn.Module, std: float = 0.05) -> None:
    """Wake the layers that start at zero so every parameter can be seen to
    get a gradient: the GSM gates (identity at start), and the last
    BatchNorm of each timm residual block (timm's zero_init_last)."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, GateShift):
            nn.init.normal_(module.gate.weight, std=std)
        elif isinstance(module, nn.BatchNorm2d) and not module.weight.detach().any():
            nn.init.ones_(module.weight)


def detector_batch(seed: int, classes: int = 3, batch: int = 2, frames: int = 8,
                   slots: int = 4) -> tuple[torch.Tensor, EntityBatch, torch.Tensor]:
    """Frames (B, T, 3, 32, 32), entities with 8-d detector features (about 80 % of
    slots filled, 3 entity classes) and one-hot targets (B, T, K+1), all from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, frames, slots)
    xy = torch.rand(*shape, 2, generator=g) * 0.7
    entities = EntityBatch(boxes=torch.cat([xy, xy + 0.2], -1), cls=torch.randint(0, 3, shape, generator=g),
                           score=torch.rand(*shape, generator=g), mask=torch.rand(*shape, generator=g) > 0.2,
                           feat=torch.randn(*shape, 8, generator=g))
    targets = F.one_hot(torch.randint(0, classes + 1, (batch, frames), generator=g), classes + 1).float()
    return torch.randn(batch, frames, 3, 32, 32, generator=g), entities, targets
