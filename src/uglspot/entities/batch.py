"""The entity tensors every stage agrees on (an exported graph's inputs too: docs/export.md).

Letters: B batch, T frames, N entity slots per frame, De feature width.
A store window gives the same fields without the batch dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class EntityBatch:
    boxes: torch.Tensor  # (B, T, N, 4) float, xyxy in [0, 1] of the frame
    cls: torch.Tensor  # (B, T, N) long, index into the prompt vocabulary
    score: torch.Tensor  # (B, T, N) float detector confidence
    mask: torch.Tensor  # (B, T, N) bool, True where a slot holds an entity
    feat: torch.Tensor | None = None  # (B, T, N, De) float, detector feature per box

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "EntityBatch":
        return replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self) if getattr(self, f.name) is not None})

    @staticmethod
    def empty(batch: int, frames: int, slots: int, feat_dim: int | None = None) -> "EntityBatch":
        """A batch with no entity in any slot."""
        return EntityBatch(
            boxes=torch.zeros(batch, frames, slots, 4),
            cls=torch.zeros(batch, frames, slots, dtype=torch.long),
            score=torch.zeros(batch, frames, slots),
            mask=torch.zeros(batch, frames, slots, dtype=torch.bool),
            feat=None if feat_dim is None else torch.zeros(batch, frames, slots, feat_dim),
        )
