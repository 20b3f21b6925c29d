"""Environment–entity fusion: the tokens [f_env, f_ent] of each frame through
one encoder layer, then their mean (f_ent_env)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from uglspot.model.packed import Slots, encoder_layer


class EnvEntityFusion(nn.Module):
    """Fuses a list of per-frame features of the same width D into one."""

    def __init__(self, width: int, heads: int = 8, ff_mult: int = 2, dropout: float = 0.1):
        super().__init__()
        if width % heads:
            raise ValueError(f"fusion width {width} is not divisible by {heads} heads")
        self.encoder = nn.TransformerEncoderLayer(width, heads, ff_mult * width, dropout, batch_first=True)
        self.output_dim = width

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: list of S tensors (B, T, D) → (B, T, D).

        The layer is computed directly on the B·T·S tokens (``encoder_layer``,
        no padding), what ``self.encoder`` on (B·T, S, D) gives."""
        B, T, D = features[0].shape
        tokens = rearrange(torch.stack(features, dim=2), "b t s d -> (b t s) d")
        fused = encoder_layer(self.encoder, tokens, Slots.full(B, T, len(features), tokens.device))  # (B·T·S, D)
        return rearrange(fused, "(b t s) d -> b t s d", b=B, t=T).mean(dim=2)  # (B, T, D)
