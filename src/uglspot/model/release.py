"""The entity branch exactly as the released UGL code computes it
(Fsoft-AIC's unifying-global-local-feature, ``model/modules.py``
``ObjectFusion`` and ``model/impl/former.py``): the layers of the
``uglr_*`` variants (``entity_layers: release``), so a model trained with
that code imports with the same logits (``uglspot import-ugl``).

Where it differs from uglspot's own layers (docs/model.md lists each quirk):

- its norm is ``alpha·(x − mean)/(std + 1e-6) + bias`` with the unbiased
  std, not LayerNorm;
- its encoder layer has two feed-forward blocks in a row (each linear to
  2048 → ReLU → dropout → linear), with a ReLU and a dropout between them,
  and the encoder ends with one more norm;
- masked slots are zeroed inside the layer, but the final norm turns them
  into its bias, and f_ent is the sum over *all* slots divided by the
  number kept: the empty slots add (slots − kept)·bias;
- the selection scores env + object, but the encoder reads the objects
  alone, and the threshold is ``softmax ≥ 1/(n + 1e-8)`` on the release's
  masked softmax, with no tolerance.

The release loops over frames; here every frame is computed at once, and
the per-slot layers run on the kept slots alone (what the other slots
would give is zeroed by the release itself).

Letters: B batch, T frames, N slots per frame, P filled slots, D width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from uglspot.model.packed import Slots, self_attention

# The released encoder layer's feed-forward width, whatever the model width.
RELEASE_FF_DIM = 2048


class ReleaseNorm(nn.Module):
    """The release's norm: ``alpha·(x − mean)/(std + eps) + bias`` over the
    last dimension, std unbiased (n − 1). An all-zero row gives ``bias``."""

    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) → (..., D)."""
        if not x.numel():  # no rows (no entity in the batch): nothing to normalise, and std would warn
            return x * self.alpha + self.bias
        centred = x - x.mean(dim=-1, keepdim=True)
        return self.alpha * (centred / (x.std(dim=-1, keepdim=True) + self.eps)) + self.bias


class FeedForward(nn.Module):
    """linear → ReLU → dropout → linear (the release's ``FeedForward``)."""

    def __init__(self, width: int, hidden: int = RELEASE_FF_DIM, dropout: float = 0.1):
        super().__init__()
        self.linear_1 = nn.Linear(width, hidden)
        self.dropout = nn.Dropout(dropout)
        self.linear_2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) → (..., D)."""
        return self.linear_2(self.dropout(F.relu(self.linear_1(x))))


class ReleaseEncoderLayer(nn.Module):
    """attention → residual → norm_1 → ff_1 → ReLU → dropout → ff_2 →
    residual → norm_2 (the release's ``EncoderLayer``; the slots it masks it
    sets to zero, which the caller does by not computing them)."""

    def __init__(self, width: int, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm_1 = ReleaseNorm(width)
        self.norm_2 = ReleaseNorm(width)
        self.ff_1 = FeedForward(width, dropout=dropout)
        self.ff_2 = FeedForward(width, dropout=dropout)
        self.dropout_1 = nn.Dropout(dropout)
        self.dropout_2 = nn.Dropout(dropout)
        self.dropout_3 = nn.Dropout(dropout)

    def forward(self, rows: torch.Tensor, slots: Slots, padding: torch.Tensor | None = None) -> torch.Tensor:
        """The rows (P, D) at ``slots``, each attending to the rows of its own
        frame that ``padding`` (B, T, N) bool, True = ignore, does not mark →
        (P, D). Projections, norms and feed-forward blocks run on the P rows."""
        x = self_attention(self.attn, rows, slots, padding, self.training)  # (P, D)
        x = self.norm_1(rows + self.dropout_1(x))
        hidden = self.ff_2(self.dropout_2(F.relu(self.ff_1(x))))  # (P, D)
        return self.norm_2(x + self.dropout_3(hidden))


class ReleaseEncoder(nn.Module):
    """One ``ReleaseEncoderLayer`` and a final ``ReleaseNorm`` (the release's
    ``Encoder`` with n = 1 and no positional encoding)."""

    def __init__(self, width: int, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList([ReleaseEncoderLayer(width, heads, dropout)])
        self.norm = ReleaseNorm(width)

    def forward(self, rows: torch.Tensor, slots: Slots, padding: torch.Tensor | None = None) -> torch.Tensor:
        """rows (P, D) at ``slots`` → (P, D)."""
        for layer in self.layers:
            rows = layer(rows, slots, padding)
        return self.norm(rows)


class ReleaseAAM(nn.Module):
    """The release's hard attention over the entities of each frame.

    Score ‖env + token‖₂ per filled slot (0 in empty slots, as the release's
    ``vector * mask``), the release's masked softmax (softmax over all N
    slots, times the mask, renormalised with +1e-13), keep the slots with
    weight ≥ 1/(n + 1e-8); the encoder reads the kept tokens alone (not env +
    token); f_ent = (Σ kept outputs + (``slots`` − kept)·final-norm bias) /
    kept, because the release zeroes the other slots and its final norm
    turns each zero row into the bias; frames with nothing kept get 0."""

    def __init__(self, width: int, heads: int = 8, dropout: float = 0.1, slots: int = 50):
        super().__init__()
        if width % heads:
            raise ValueError(f"AAM width {width} is not divisible by {heads} heads")
        self.encoder = ReleaseEncoder(width, heads, dropout)
        self.slots = slots

    def forward(self, env: torch.Tensor, tokens: torch.Tensor, slots: Slots) -> tuple[torch.Tensor, torch.Tensor]:
        """env (B, T, D) and the tokens (P, D) of the filled ``slots`` → f_ent
        (B, T, D) and attention (B, T, N): the softmax weight of each kept
        entity, 0 for dropped and empty slots."""
        weights, keep = self.select(env, tokens, slots)
        B, T, N = keep.shape
        rows = slots.gather(keep)  # (P,) bool: which filled slots are kept
        kept = slots.subset(rows)
        padding = ~kept.mask & kept.mask.any(dim=-1, keepdim=True)  # frames without a kept slot attend to all
        encoded = kept.scatter(self.encoder(tokens[rows], kept, padding))  # (B, T, N, D), zeros elsewhere
        count = keep.sum(dim=-1, keepdim=True).to(encoded.dtype)  # (B, T, 1)
        empty = (self.slots - count).clamp(min=0) * self.encoder.norm.bias.to(encoded.dtype)  # (B, T, D)
        f_ent = (encoded.sum(dim=2) + empty) / count.clamp(min=1)
        return torch.where(count > 0, f_ent, torch.zeros_like(f_ent)), weights * keep

    def select(self, env: torch.Tensor, tokens: torch.Tensor, slots: Slots) -> tuple[torch.Tensor, torch.Tensor]:
        """Release weights (B, T, N) (0 on empty slots) and the kept slots (B, T, N) bool."""
        mask = slots.mask
        B, T, N = mask.shape
        context = rearrange(env, "b t d -> (b t) d")[slots.frame] + tokens  # (P, D) env_t + token_{t,i}
        scores = slots.scatter(torch.linalg.vector_norm(context.float(), dim=-1))  # (B, T, N), 0 when empty
        present = mask.float()
        weights = torch.softmax(scores, dim=-1) * present
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-13)
        threshold = (1.0 / (1e-8 + present.sum(dim=-1, keepdim=True))).clamp(0.0, 1.0)  # (B, T, 1)
        return weights, weights >= threshold


class ReleaseFusion(nn.Module):
    """The release's env–entity fusion: the tokens [f_env, f_ent] of each
    frame through a ``ReleaseEncoder`` (no mask), then their mean."""

    def __init__(self, width: int, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        if width % heads:
            raise ValueError(f"fusion width {width} is not divisible by {heads} heads")
        self.encoder = ReleaseEncoder(width, heads, dropout)
        self.output_dim = width

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: list of S tensors (B, T, D) → (B, T, D)."""
        B, T, D = features[0].shape
        tokens = rearrange(torch.stack(features, dim=2), "b t s d -> (b t s) d")
        fused = self.encoder(tokens, Slots.full(B, T, len(features), tokens.device))  # (B·T·S, D)
        return rearrange(fused, "(b t s) d -> b t s d", b=B, t=T).mean(dim=2)  # (B, T, D)
