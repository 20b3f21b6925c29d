"""The local branch: one token per entity slot, and the Adaptive Attention
Mechanism (AAM) that picks the relevant entities of each frame and fuses
them into f_ent.

Letters: B batch, T frames, N entity slots, D common width, De detector
feature width, C' channels of the backbone map.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from torch import nn

from uglspot.entities.batch import EntityBatch
from uglspot.model.packed import Slots, encoder_layer

EntitySource = Literal["detector", "backbone"]
EntitySelection = Literal["hard", "learned"]

# Relative slack on the hard-attention threshold 1/n_valid, so entities whose
# softmax weight equals the uniform weight up to rounding are kept.
KEEP_RTOL = 1e-5
# Bilinear samples per RoIAlign bin side (torchvision's sampling_ratio).
ROI_SAMPLING = 2


def roi_features(fmap: torch.Tensor, boxes: torch.Tensor, slots: Slots, image_size: tuple[int, int],
                 stride: int, roi_size: int = 2) -> torch.Tensor:
    """RoIAlign of every box on its own frame's map, averaged over the bins:
    ``torchvision.ops.roi_align(fmap, rois, roi_size, 1 / stride,
    sampling_ratio=2, aligned=True).mean((2, 3))``, computed as one batched
    matrix product.

    Averaged over its bins, RoIAlign weighs each cell of the map by a fixed
    amount, the product of a row weight and a column weight (the bilinear
    weights of the samples, summed); so a box is an (h·w) weight vector and
    a frame's boxes one (N, h·w) @ (h·w, C') product. On CPU, for 334 boxes
    on the 768-channel maps of 16 frames at 112×200, torchvision's roi_align
    took 9 ms forward and 65 ms with its backward; this takes 1 and 3 ms.

    fmap (B·T, C', h, w); boxes (P, 4) xyxy in [0, 1] of a frame of
    ``image_size`` (H, W) pixels, at the filled ``slots``; the map has stride
    ``stride``. Returns (P, C').
    """
    BT, C, h, w = fmap.shape
    P, _ = boxes.shape
    B, T, N = slots.shape
    H, W = image_size
    # box corners in map cells; aligned RoIAlign samples at the cell centres, half a cell in
    corners = boxes.double() * torch.tensor([W, H, W, H], dtype=torch.float64, device=boxes.device) / stride - 0.5
    x1, y1, x2, y2 = corners.unbind(-1)  # (P,) each
    rows = _axis_weights(y1, y2, h, roi_size)  # (P, h)
    cols = _axis_weights(x1, x2, w, roi_size)  # (P, w)
    weights = (rows.unsqueeze(2) * cols.unsqueeze(1)).reshape(P, h * w) / (roi_size * ROI_SAMPLING) ** 2  # (P, h·w)
    per_frame = slots.scatter(weights.to(fmap.dtype)).reshape(BT, N, h * w)  # (B·T, N, h·w)
    pooled = torch.bmm(per_frame, fmap.flatten(2).transpose(1, 2))  # (B·T, N, C')
    return slots.gather(pooled.reshape(B, T, N, C))  # (P, C')


def _axis_weights(start: torch.Tensor, end: torch.Tensor, size: int, bins: int) -> torch.Tensor:
    """start, end (P,) of the boxes along one axis of a map ``size`` cells
    long → (P, size): the bilinear weight of each cell summed over the
    bins·ROI_SAMPLING sample positions, with RoIAlign's border rules (a
    sample more than one cell outside counts 0, one within a cell of the
    border is clamped to it)."""
    step = (end - start) / (bins * ROI_SAMPLING)  # (P,) distance between samples
    k = torch.arange(bins * ROI_SAMPLING, dtype=start.dtype, device=start.device)
    position = start.unsqueeze(1) + (k + 0.5) * step.unsqueeze(1)  # (P, K)
    inside = (position >= -1) & (position <= size)
    position = position.clamp(min=0)
    low = position.floor()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(position), position - low)  # weight of the high cell
    cells = torch.arange(size, dtype=start.dtype, device=start.device)
    weights = ((low.unsqueeze(-1) == cells) * (1 - frac).unsqueeze(-1)
               + (high.unsqueeze(-1) == cells) * frac.unsqueeze(-1))  # (P, K, size)
    return (weights * inside.unsqueeze(-1)).sum(dim=1)  # (P, size)


class EntityTokens(nn.Module):
    """Per-slot entity tokens of width D: the box feature (stored detector
    feature, or RoIAlign on the backbone map) normalised and projected, plus a
    learned embedding of the detector class when ``num_classes`` > 0, plus
    (with ``geometry``) a projection of where the box is, its size and the
    detector's confidence: a card in the referee's raised hand and a
    card-coloured speck in the crowd can share a feature but not a place.

    Tokens are computed for the filled slots only."""

    GEOMETRY = 7  # x1, y1, x2, y2, width, height, score

    def __init__(self, source: EntitySource, in_dim: int, width: int, num_classes: int = 0, roi_size: int = 2,
                 geometry: bool = False, norm: nn.Module | None = None):
        super().__init__()
        if source not in ("detector", "backbone"):
            raise ValueError(f"unknown entity source {source!r}; use detector or backbone")
        self.source = source
        self.in_dim = in_dim
        self.roi_size = roi_size
        self.num_classes = num_classes
        self.norm = norm if norm is not None else nn.LayerNorm(in_dim)  # the uglr_* variants: the release's norm
        self.proj = nn.Linear(in_dim, width)
        self.cls_embed = nn.Embedding(num_classes, width) if num_classes > 0 else None
        self.geometry = nn.Linear(self.GEOMETRY, width) if geometry else None

    def forward(self, entities: EntityBatch, fmap: torch.Tensor | None = None,
                image_size: tuple[int, int] | None = None, stride: int = 32,
                slots: Slots | None = None) -> torch.Tensor:
        """entities with boxes (B, T, N, 4) [and feat (B, T, N, De)]; fmap
        (B·T, C', h, w) for the backbone source → tokens (B, T, N, D), zeros
        in the empty slots; with ``slots`` (the filled slots) their tokens
        (P, D) alone. Class indices outside [0, num_classes) are clamped: the
        caller checks the store's vocabulary against the model's
        num_entity_classes."""
        B, T, N = entities.mask.shape
        packed = slots if slots is not None else Slots.of(entities.mask)
        tokens = self.embed(self.features(entities, packed, fmap, image_size, stride), entities, packed)  # (P, D)
        return tokens if slots is not None else packed.scatter(tokens)

    def features(self, entities: EntityBatch, slots: Slots, fmap: torch.Tensor | None = None,
                 image_size: tuple[int, int] | None = None, stride: int = 32) -> torch.Tensor:
        """The box features (P, De or C') of the slots: the stored detector
        feature, or RoIAlign of the box on the backbone map."""
        if self.source == "detector":
            feat = entities.feat
            if feat is None:
                raise ValueError("entity_source 'detector' needs entity features (EntityBatch.feat); "
                                 "the entity store holds none: re-run detection with features or use "
                                 "entity_source 'backbone'")
            if feat.shape[-1] != self.in_dim:
                raise ValueError(f"entity features are {feat.shape[-1]}-d but the model expects "
                                 f"entity_feat_dim {self.in_dim}")
            return slots.gather(feat)  # (P, De)
        if fmap is None or image_size is None:
            raise ValueError("entity_source 'backbone' needs the backbone map and the frame size")
        return roi_features(fmap, slots.gather(entities.boxes), slots, image_size, stride,
                            self.roi_size)  # (P, C')

    def embed(self, feat: torch.Tensor, entities: EntityBatch, slots: Slots) -> torch.Tensor:
        """Box features (P, De or C') → tokens (P, D)."""
        tokens = self.proj(self.norm(feat.to(self.proj.weight.dtype)))  # (P, D)
        if self.cls_embed is not None:
            tokens = tokens + self.cls_embed(slots.gather(entities.cls).clamp(0, self.num_classes - 1))
        if self.geometry is not None:
            boxes = slots.gather(entities.boxes).to(tokens.dtype)  # (P, 4)
            size = boxes[:, 2:] - boxes[:, :2]  # (P, 2)
            score = slots.gather(entities.score).to(tokens.dtype).unsqueeze(-1)  # (P, 1)
            tokens = tokens + self.geometry(torch.cat([boxes, size, score], dim=-1))  # (P, 7) → (P, D)
        return tokens


class AdaptiveAttention(nn.Module):
    """AAM: pick the relevant entities of each frame, relate them with one
    encoder layer, and pool them into f_ent.

    Two selections:

    - ``hard`` (the paper's): relevance of entity i in frame t is
      ‖env_t + token_{t,i}‖₂, a softmax over the valid slots turns it into
      weights, and the entities with at least the uniform weight 1/n_valid are
      kept; f_ent is the plain mean of the kept, encoded entities. The rule
      has no parameter of its own and a dropped entity gets no gradient, so
      the selection cannot learn to keep the entity that matters.
    - ``learned``: a small scorer reads env_t + token_{t,i} and gives each
      entity a relevance logit; its masked softmax weights the encoded
      entities (all valid ones take part), so f_ent = Σ_i w_i·enc_i and every
      entity's relevance gets a gradient. Entities with w ≥ 1/n_valid count
      as "kept" for reports.

    Frames without a valid entity get f_ent = 0. All frames are processed at
    once (no loop over frames), and every per-entity layer runs on the
    filled slots only.
    """

    def __init__(self, width: int, heads: int = 8, ff_mult: int = 2, dropout: float = 0.1,
                 selection: EntitySelection = "hard"):
        super().__init__()
        if width % heads:
            raise ValueError(f"AAM width {width} is not divisible by {heads} heads")
        if selection not in ("hard", "learned"):
            raise ValueError(f"unknown entity selection {selection!r}; use hard or learned")
        self.selection = selection
        self.encoder = nn.TransformerEncoderLayer(width, heads, ff_mult * width, dropout, batch_first=True)
        self.scorer = (nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width // 4), nn.GELU(),
                                     nn.Linear(width // 4, 1)) if selection == "learned" else None)

    def forward(self, env: torch.Tensor, tokens: torch.Tensor,
                slots: Slots | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """env (B, T, D) and the tokens (P, D) of the filled ``slots``, or
        tokens (B, T, N, D) with their mask (B, T, N) bool → f_ent (B, T, D)
        and attention (B, T, N): the relevance weights of the kept entities,
        0 for dropped and empty slots."""
        if not isinstance(slots, Slots):  # dense tokens and their mask
            slots = Slots.of(slots)
            tokens = slots.gather(tokens)  # (P, D)
        weights, keep = self.select(env, tokens, slots)
        return self.encode(tokens, weights, keep, slots), weights * keep

    def encode(self, tokens: torch.Tensor, weights: torch.Tensor, keep: torch.Tensor,
               slots: Slots) -> torch.Tensor:
        """The selected entities among ``tokens`` (P, D) through the encoder
        layer, each attending to the selected ones of its frame, pooled into
        f_ent (B, T, D): their mean (hard) or their relevance-weighted sum
        (learned)."""
        P, D = tokens.shape
        if self.selection == "hard":  # the encoder sees the kept entities alone
            rows = slots.gather(keep)  # (P,) bool
            tokens, slots = tokens[rows], slots.subset(rows)  # (K, D)
        # A frame with no entity attends to its (empty) slots instead of to
        # nothing, which would be NaN; no row of it is read back.
        padding = ~slots.mask & slots.mask.any(dim=-1, keepdim=True)  # (B, T, N)
        encoded = slots.scatter(encoder_layer(self.encoder, tokens, slots, padding))  # (B, T, N, D)
        if self.selection == "hard":
            count = keep.sum(dim=-1, keepdim=True).clamp(min=1).to(encoded.dtype)  # (B, T, 1)
            return encoded.sum(dim=2) / count  # (B, T, D)
        return (encoded * weights.unsqueeze(-1).to(encoded.dtype)).sum(dim=2)  # (B, T, D)

    def select(self, env: torch.Tensor, tokens: torch.Tensor,
               slots: Slots) -> tuple[torch.Tensor, torch.Tensor]:
        """env (B, T, D) and the tokens (P, D) of the filled ``slots`` →
        relevance weights (B, T, N) (masked softmax, 0 on empty slots) and
        the kept slots (B, T, N) bool: weight at least 1/n_valid."""
        mask = slots.mask
        B, T, N = mask.shape
        context = rearrange(env, "b t d -> (b t) d")[slots.frame] + tokens  # (P, D) env_t + token_{t,i}
        if self.scorer is None:
            scores = torch.linalg.vector_norm(context.float(), dim=-1)  # (P,)
        else:
            scores = self.scorer(context).squeeze(-1).float()  # (P,)
        if slots.index is None:
            relevance = scores.view(B, T, N)
        else:  # empty slots get the lowest score, as a masked softmax needs
            lowest = torch.full((B * T * N,), torch.finfo(scores.dtype).min, dtype=scores.dtype, device=scores.device)
            relevance = lowest.index_put((slots.index,), scores).view(B, T, N)
        weights = relevance.softmax(dim=-1) * mask
        n_valid = mask.sum(dim=-1, keepdim=True).clamp(min=1)  # (B, T, 1)
        keep = mask & (weights * n_valid >= 1.0 - KEEP_RTOL)
        return weights, keep
