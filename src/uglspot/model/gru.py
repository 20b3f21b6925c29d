"""A one-layer bidirectional GRU whose training step on a CPU computes its
weight gradients once per clip instead of once per frame.

PyTorch's CPU GRU records every time step in autograd: its backward then
forms the gradient of the recurrent weights (3H, H) as one outer product per
frame and direction and adds them up, a pass over 7 MB per frame for H =
768 that dominates the layer's cost. Here the forward runs the same cell, in
the same operations (so the outputs are the same bits), and keeps the gates;
the backward runs the recurrence for the hidden state's gradient alone and
then takes every weight gradient as one matrix product over all frames. The
gradients are the same sums in another order (within 1e-6 of PyTorch's in
fp32, ``tests/test_model_gru.py``).

Used for CPU training in fp32 or fp64 without autocast; everywhere else
(inference, CUDA and its cuDNN kernel, autocast, tracing for ONNX) the
module runs as it is.

Letters: B batch, T frames, D input width, H hidden width.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def run_gru(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """``gru`` (one layer, bidirectional, batch-first) on x (B, T, D) from a
    zero state → outputs (B, T, 2H), what ``gru(x)[0]`` gives."""
    if by_clip(gru, x):
        weights = [getattr(gru, f"{name}_l0{suffix}") for suffix in ("", "_reverse")
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return _BidirectionalGRU.apply(x, *weights)
    return gru(x)[0]


def by_clip(gru: nn.GRU, x: torch.Tensor) -> bool:
    """Whether ``run_gru`` takes the per-clip backward: a training step (a
    gradient is wanted) on a CPU in fp32 or fp64, without autocast or
    tracing, of a plain one-layer bidirectional batch-first GRU."""
    plain = (gru.num_layers == 1 and gru.bidirectional and gru.batch_first and gru.bias
             and getattr(gru, "proj_size", 0) == 0)
    return (plain and torch.is_grad_enabled() and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and gru.weight_hh_l0.dtype == x.dtype
            and (x.requires_grad or any(p.requires_grad for p in gru.parameters()))
            and not torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing()
            and not torch.jit.is_scripting() and not torch.compiler.is_compiling())


class _BidirectionalGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), then weight_ih, weight_hh, bias_ih, bias_hh of the
        forward direction and of the reverse one → (B, T, 2H)."""
        B, T, D = x.shape
        steps = x.transpose(0, 1)  # (T, B, D), the layout PyTorch's CPU GRU runs in
        outputs, kept = [], []
        for direction in range(2):
            w_ih, w_hh, b_ih, b_hh = weights[4 * direction:4 * direction + 4]
            input_gates = F.linear(steps, w_ih, b_ih)  # (T, B, 3H)
            out, gates = _run_direction(input_gates, w_hh, b_hh, _frames(T, direction))  # (T, B, H), 5 × (T, B, H)
            outputs.append(out)
            kept.extend(gates)
        ctx.save_for_backward(x, *weights, *kept)
        return torch.cat(outputs, dim=2).transpose(0, 1)  # (B, T, 2H)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, *rest = ctx.saved_tensors
        weights, kept = rest[:8], rest[8:]
        B, T, D = x.shape
        steps = x.transpose(0, 1).reshape(T * B, D)  # (T·B, D)
        grad_steps = grad_out.transpose(0, 1)  # (T, B, 2H)
        grad_x = None
        grads: list[torch.Tensor | None] = []
        for direction in range(2):
            w_ih, w_hh, _, _ = weights[4 * direction:4 * direction + 4]
            H = w_hh.shape[1]
            gates = kept[5 * direction:5 * direction + 5]
            grad_input_gates, grad_hidden_gates, previous = _back_direction(
                grad_steps[..., direction * H:(direction + 1) * H], gates, w_hh,
                reversed(_frames(T, direction)))  # each (T·B, ·)
            if ctx.needs_input_grad[0]:
                part = grad_input_gates @ w_ih  # (T·B, D)
                grad_x = part if grad_x is None else grad_x + part
            needed = ctx.needs_input_grad[1 + 4 * direction:5 + 4 * direction]
            grads += [grad_input_gates.t() @ steps if needed[0] else None,  # (3H, D)
                      grad_hidden_gates.t() @ previous if needed[1] else None,  # (3H, H)
                      grad_input_gates.sum(dim=0) if needed[2] else None,
                      grad_hidden_gates.sum(dim=0) if needed[3] else None]
        return (None if grad_x is None else grad_x.view(T, B, D).transpose(0, 1), *grads)


def _frames(T: int, direction: int) -> range:
    """The frames in the order direction 0 (forward) or 1 (reverse) runs them."""
    return range(T) if direction == 0 else range(T - 1, -1, -1)


def _run_direction(input_gates: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
                   order: range) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The cell over ``order`` of the frames from a zero state, with the
    operations of PyTorch's CPU GRU cell. input_gates (T, B, 3H) →
    outputs (T, B, H) and, for the backward, the reset and update gates,
    the candidate, the recurrent candidate term W_hn·h + b_hn and the state
    each frame started from, each (T, B, H)."""
    T, B, H3 = input_gates.shape
    H = H3 // 3
    out, reset, update, candidate, recurrent, previous = (input_gates.new_empty(T, B, H) for _ in range(6))
    hidden = input_gates.new_zeros(B, H)
    for t in order:
        # in place on the chunks, as PyTorch's cell: a vectorised kernel rounds as the data is laid out
        i_r, i_z, i_n = input_gates[t].chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(hidden, w_hh, b_hh).chunk(3, dim=1)  # (B, H) each
        recurrent[t] = h_n
        r = h_r.add_(i_r).sigmoid_()
        z = h_z.add_(i_z).sigmoid_()
        n = i_n.add(h_n.mul_(r)).tanh_()
        previous[t] = hidden
        hidden = (hidden - n).mul_(z).add_(n)
        out[t], reset[t], update[t], candidate[t] = hidden, r, z, n
    return out, [reset, update, candidate, recurrent, previous]


def _back_direction(grad_out: torch.Tensor, gates: list[torch.Tensor], w_hh: torch.Tensor,
                    order: Iterable[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """grad_out (T, B, H) of one direction's outputs, its kept gates, and
    ``order``, the frames latest first in the forward's sense → the
    gradients of the input gates' and the recurrent gates' pre-activations
    and the previous state of each frame, each (T·B, 3H or H)."""
    reset, update, candidate, recurrent, previous = gates
    T, B, H = grad_out.shape
    grad_input = grad_out.new_empty(T, B, 3 * H)
    grad_hidden = grad_out.new_empty(T, B, 3 * H)
    grad = grad_out.new_zeros(B, H)
    for t in order:
        grad = grad + grad_out[t]
        r, z, n, h_n = reset[t], update[t], candidate[t], recurrent[t]
        grad_n = grad * (1 - z) * (1 - n * n)  # through the tanh
        grad_input[t, :, :H] = grad_r = grad_n * h_n * r * (1 - r)
        grad_input[t, :, H:2 * H] = grad_z = grad * (previous[t] - n) * z * (1 - z)
        grad_input[t, :, 2 * H:] = grad_n
        grad_hidden[t, :, :H], grad_hidden[t, :, H:2 * H] = grad_r, grad_z
        grad_hidden[t, :, 2 * H:] = grad_n * r
        grad = torch.addmm(grad * z, grad_hidden[t], w_hh)  # (B, H), into the previous state
    return grad_input.view(T * B, 3 * H), grad_hidden.view(T * B, 3 * H), previous.view(T * B, H)
