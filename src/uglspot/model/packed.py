"""Packed slots: the filled slots of a (B, T, N) mask as P rows, and a
transformer encoder layer that runs on those rows alone.

Of the 50 entity slots of a frame, often fewer than half hold an entity.
Every per-slot layer (RoIAlign, the token projection, the scorer, the
encoder's projections and feed-forward block) runs on the P filled rows;
only the attention, whose cost is small, lays them out by frame again.

Letters: B batch, T frames, N slots per frame, P filled slots, D width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Slots:
    """Which slots of a (B, T, N) grid are rows, in row-major order.

    ``index`` None means every slot is a row (P = B·T·N) and packing is a
    reshape.
    """

    mask: torch.Tensor  # (B, T, N) bool
    index: torch.Tensor | None  # (P,) long, flat index into B·T·N

    @staticmethod
    def of(mask: torch.Tensor) -> "Slots":
        """The True slots of ``mask`` (B, T, N). Finding how many there are
        synchronises host and device: once per forward of the entity branch
        (once more for the hard selection's kept entities, ``subset``)."""
        return Slots(mask, mask.reshape(-1).nonzero().squeeze(1))

    @staticmethod
    def full(batch: int, frames: int, slots: int, device: torch.device) -> "Slots":
        """Every slot of a (batch, frames, slots) grid, no packing."""
        return Slots(torch.ones(batch, frames, slots, dtype=torch.bool, device=device), None)

    @property
    def shape(self) -> tuple[int, int, int]:
        B, T, N = self.mask.shape
        return B, T, N

    @property
    def frame(self) -> torch.Tensor:
        """(P,) the frame of each row, a flat index into B·T."""
        B, T, N = self.mask.shape
        if self.index is None:
            return torch.arange(B * T, device=self.mask.device).repeat_interleave(N)
        return torch.div(self.index, N, rounding_mode="floor")

    def subset(self, rows: torch.Tensor) -> "Slots":
        """The rows where ``rows`` (P,) bool is True, as slots of their own."""
        index = self.index if self.index is not None else torch.arange(rows.numel(), device=rows.device)
        kept = index[rows]
        mask = torch.zeros(self.mask.numel(), dtype=torch.bool, device=rows.device)
        # the value 1, not True: the TorchScript tracer (ONNX export) has no index_fill taking a bool scalar
        return Slots(mask.index_fill(0, kept, 1).view(self.mask.shape), kept)

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """(B, T, N, ...) → (P, ...)."""
        flat = dense.reshape(-1, *dense.shape[3:])  # (B·T·N, ...)
        return flat if self.index is None else flat[self.index]

    def scatter(self, rows: torch.Tensor) -> torch.Tensor:
        """(P, ...) → (B, T, N, ...), zeros where no row is."""
        B, T, N = self.mask.shape
        if self.index is None:
            return rows.reshape(B, T, N, *rows.shape[1:])
        # in place on the new zeros: index_put would first copy the whole dense grid
        flat = rows.new_zeros(B * T * N, *rows.shape[1:]).index_put_((self.index,), rows)  # (B·T·N, ...)
        return flat.reshape(B, T, N, *rows.shape[1:])

    def gather_slot_major(self, dense: torch.Tensor) -> torch.Tensor:
        """(N, B·T, ...) laid out slot by slot (the sequence-first layout of
        ``nn.MultiheadAttention``) → (P, ...)."""
        B, T, N = self.mask.shape
        flat = dense.reshape(-1, *dense.shape[2:])  # (N·B·T, ...)
        if self.index is None:
            return flat.view(N, B * T, *dense.shape[2:]).transpose(0, 1).reshape(-1, *dense.shape[2:])
        frame = torch.div(self.index, N, rounding_mode="floor")
        return flat[(self.index - frame * N) * (B * T) + frame]


def encoder_layer(layer: nn.TransformerEncoderLayer, rows: torch.Tensor, slots: Slots,
                  padding: torch.Tensor | None = None) -> torch.Tensor:
    """``layer`` (post-norm, batch-first) on the rows (P, D) at ``slots``,
    each row attending to the rows of its own frame that ``padding``
    (B, T, N) bool, True = ignore, does not mark → (P, D).

    The rows get what ``layer(x, src_key_padding_mask=padding)`` gives at
    those slots for x (B·T, N, D) holding them; the projections, norms and
    the feed-forward block run on the P rows alone and only the attention
    lays them out by frame. In training the dropout masks are drawn as the
    dense call draws them (same shapes, memory order and order), so with the
    same seed the outputs are the dense call's on CPU, up to rounding.
    """
    attn = layer.self_attn
    if layer.norm_first or not attn.batch_first or not attn._qkv_same_embed_dim:
        raise ValueError("encoder_layer computes a post-norm, batch-first layer with one packed in-projection")
    train = layer.training
    x = self_attention(attn, rows, slots, padding, train)  # (P, D)
    # nn.MultiheadAttention computes its output sequence-first: dropout1's mask is drawn in that order
    x = layer.norm1(rows + dropped(x, layer.dropout1.p, train, slots, slot_major=True))
    hidden = dropped(layer.activation(layer.linear1(x)), layer.dropout.p, train, slots)  # (P, ff)
    return layer.norm2(x + dropped(layer.linear2(hidden), layer.dropout2.p, train, slots))


def self_attention(attn: nn.MultiheadAttention, rows: torch.Tensor, slots: Slots,
                   padding: torch.Tensor | None, train: bool) -> torch.Tensor:
    """``attn`` (one packed in-projection) of the rows (P, D) at ``slots``,
    each attending to the rows of its own frame that ``padding`` (B, T, N)
    bool, True = ignore, does not mark → (P, D), after the output
    projection. The projections run on the P rows; only the attention lays
    them out by frame."""
    P, D = rows.shape
    B, T, N = slots.shape
    heads = attn.num_heads
    qkv = F.linear(rows, attn.in_proj_weight, attn.in_proj_bias)  # (P, 3D)
    qkv = slots.scatter(qkv).reshape(B * T, N, 3, heads, D // heads)  # (B·T, N, 3, h, D/h)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B·T, h, N, D/h)
    bias = None
    if padding is not None:
        bias = torch.zeros(B * T, 1, 1, N, dtype=q.dtype, device=q.device).masked_fill(
            padding.reshape(B * T, 1, 1, N), float("-inf"))
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                              dropout_p=attn.dropout if train else 0.0)  # (B·T, h, N, D/h)
    attended = slots.gather(attended.transpose(1, 2).reshape(B, T, N, D))  # (P, D)
    return F.linear(attended, attn.out_proj.weight, attn.out_proj.bias)


def dropped(rows: torch.Tensor, p: float, train: bool, slots: Slots, slot_major: bool = False) -> torch.Tensor:
    """Dropout of the rows (P, W) with the mask that dropout of the dense
    (B·T, N, W) tensor would draw (laid out (N, B·T, W) when ``slot_major``)."""
    if not train or p == 0:
        return rows
    B, T, N = slots.shape
    shape = (N, B * T, rows.shape[-1]) if slot_major else (B, T, N, rows.shape[-1])
    # The bits F.dropout would draw (it fills empty memory with bernoulli(1 − p)),
    # but scaled by 1/(1 − p) only on the gathered rows: the dense fill, divide and
    # multiply over every empty slot were a third of the mask's cost.
    keep = torch.empty(shape, dtype=rows.dtype, device=rows.device).bernoulli_(1 - p)
    keep = slots.gather_slot_major(keep) if slot_major else slots.gather(keep)
    return rows * keep.div_(1 - p)
