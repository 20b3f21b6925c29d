"""Long-term temporal reasoning: a bidirectional GRU over the clip, dropout,
and a linear layer to K+1 per-frame scores (index 0 is "no event")."""

from __future__ import annotations

import torch
from torch import nn

from uglspot.model.gru import run_gru


class GRUHead(nn.Module):
    def __init__(self, in_dim: int, num_outputs: int, hidden_dim: int, dropout: float = 0.5):
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden_dim, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden_dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) → logits (B, T, K+1)."""
        B, T, D = x.shape
        # CPU autocast has no GRU kernel for reduced precision; CUDA autocast
        # casts back down itself.
        y = run_gru(self.gru, x.to(self.gru.weight_ih_l0.dtype))  # (B, T, 2·hidden)
        return self.fc(self.dropout(y))
