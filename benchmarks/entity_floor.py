"""The least time the UGL recipe's entity branch can add to a step on this
machine, with its numbers unchanged, against the global-only model's step
measured in the same run. Prints one JSON line per figure.

What ``ugl_rny008`` (the recipe) computes beyond ``e2e_rny008`` and cannot
skip without changing its outputs or its seeded training:

- ``matmuls``: every weight matrix of the branch times the rows it reads at
  their real sizes: the token projection, the scorer and the encoder layer
  over the P filled slots, the fusion layer over 2·B·T tokens, the
  environment projection, the entity classifier and the fused head's
  classifier over B·T frames. Inference: one ``F.linear`` each; training:
  its forward and backward (input and weight gradients).
- ``second_gru``: the fused head's bidirectional GRU alone (the global head
  is the global-only model's own); its recurrence reads the 7 MB of
  recurrent weights once per frame and direction.
- ``optimizer`` (training): the engine's fused AdamW over the branch's and
  the fused head's parameters, 18 M for ``ugl_rny008``.
- ``dropout_bits`` (training): the random bits of the branch's dropout
  masks, drawn for the dense grid of slots so a seeded run draws what the
  dense layers drew (``uglspot.model.packed.dropped``).

Everything else the branch does (attention over a frame's slots, norms,
softmax, packing, autograd's bookkeeping) is left out, so the floor is below
what any code computing these layers can reach. ``floor_ratio`` is
(global-only step + these parts) / global-only step; ``entity_branch_time_ratio``
the recipe's whole step over the global-only one, measured in the same
rounds. Sizes as ``model_speed.py`` on CPU: B=1, T=16, 112×200, 50 slots of
which 40 % filled, fp32. Usage:

    PYTHONPATH=src python benchmarks/entity_floor.py --threads 1 [--rounds 7]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from model_speed import (add_cpu_sizes, emit, make_batch, malloc_setting, median, model_step, positive,
                         timed)
from uglspot.engine.schedule import adamw
from uglspot.model import create_model
from uglspot.model.gru import run_gru
from uglspot.model.spotter import UGLSpotter

# The global-only model's parts, which the recipe has too: the rest of its parameters are the branch's.
GLOBAL_PATH = ("backbone.", "global_head.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ugl_rny008", choices=["ugl_rny008", "ugl_rny002"])
    add_cpu_sizes(parser)
    parser.add_argument("--rounds", type=positive, default=7, help="timed rounds; figures are medians")
    return parser.parse_args(argv)


def linears(model: UGLSpotter, filled: int, frames: int) -> list[tuple[torch.Tensor, torch.Tensor | None, int]]:
    """(weight, bias, rows) of every matrix product of the branch."""
    aam, fusion = model.aam.encoder, model.fusion.encoder
    per_slot = [model.entity_tokens.proj, aam.self_attn.out_proj, aam.linear1, aam.linear2]
    per_slot += [m for m in (model.aam.scorer or []) if isinstance(m, nn.Linear)]
    per_token = [fusion.self_attn.out_proj, fusion.linear1, fusion.linear2]
    per_frame = [model.env_proj[1], model.entity_head, model.head.fc]
    return ([(m.weight, m.bias, filled) for m in per_slot]
            + [(aam.self_attn.in_proj_weight, aam.self_attn.in_proj_bias, filled),
               (fusion.self_attn.in_proj_weight, fusion.self_attn.in_proj_bias, 2 * frames)]
            + [(m.weight, m.bias, 2 * frames) for m in per_token]
            + [(m.weight, m.bias, frames) for m in per_frame if m is not None])


def matmuls(model: UGLSpotter, filled: int, frames: int, train: bool) -> Callable[[], None]:
    products = [(torch.randn(rows, weight.shape[1]), weight.detach().requires_grad_(train),
                 None if bias is None else bias.detach().requires_grad_(train))
                for weight, bias, rows in linears(model, filled, frames)]

    def run() -> None:
        with torch.inference_mode(not train):
            for x, weight, bias in products:
                y = F.linear(x.requires_grad_(train), weight, bias)
                if train:
                    y.backward(torch.ones_like(y))
                    x.grad = weight.grad = None
                    if bias is not None:
                        bias.grad = None

    return run


def second_gru(model: UGLSpotter, batch: int, frames: int, train: bool) -> Callable[[], None]:
    gru = model.head.gru
    x = torch.randn(batch, frames, gru.input_size)

    def run() -> None:
        if train:
            out = run_gru(gru, x.detach().requires_grad_())
            out.backward(torch.ones_like(out))
            gru.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                gru(x)

    return run


def optimizer(model: UGLSpotter) -> tuple[Callable[[], None], int]:
    params = [p for name, p in model.named_parameters() if not name.startswith(GLOBAL_PATH)]
    copies = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in params])
    for p in copies:
        p.grad = torch.randn_like(p) * 1e-3
    return adamw(copies, lr=1e-4, weight_decay=0.01).step, sum(p.numel() for p in copies)


def dropout_bits(model: UGLSpotter, batch: int, frames: int, slots: int) -> tuple[Callable[[], None], int]:
    """The bits of every dropout mask of the branch: the encoder's four over
    the dense slot grid (attention weights, after attention, inside and
    after the feed-forward block), the fusion's four over its two tokens,
    and the fused head's over its GRU output."""
    D, heads, ff = model.feat_dim, model.aam.encoder.self_attn.num_heads, model.aam.encoder.linear1.out_features
    grid = batch * frames * slots
    count = grid * (heads * slots + 2 * D + ff) + 2 * batch * frames * (heads * 2 + 2 * D + ff)
    count += batch * frames * 2 * model.head.gru.hidden_size

    def run() -> None:
        torch.empty(count).bernoulli_(0.9)

    return run, count


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc = malloc_setting(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    reference_name = args.model.replace("ugl_", "e2e_")
    frames, entities, targets = make_batch(args, args.batch, torch.device("cpu"))
    filled, bt = int(entities.mask.sum()), args.batch * args.frames
    common = dict(model=args.model, reference=reference_name, device="cpu", batch=args.batch, frames=args.frames,
                  height=args.height, width=args.width, slots=args.slots, valid=args.valid, filled=filled,
                  amp="fp32", threads=torch.get_num_threads(), malloc=malloc, rounds=args.rounds)
    torch.manual_seed(0)
    model = create_model(args.model, args.classes, clip_len=args.frames)
    reference = create_model(reference_name, args.classes, clip_len=args.frames)
    bits, bit_count = dropout_bits(model, args.batch, args.frames, args.slots)
    optim_step, optim_params = optimizer(model)
    for phase in ("train", "infer"):
        train = phase == "train"
        steps = {name: model_step(net, net, inputs, targets, adamw(net, lr=1e-4, weight_decay=0.01),
                                  torch.amp.GradScaler("cuda", enabled=False), nullcontext, train)
                 for name, net, inputs in (("reference", reference, (frames, None)),
                                           ("model", model, (frames, entities)))}
        parts = {"matmuls": matmuls(model, filled, bt, train),
                 "second_gru": second_gru(model, args.batch, args.frames, train)}
        if train:
            parts |= {"optimizer": optim_step, "dropout_bits": bits}
        for run in [*steps.values(), *parts.values()]:  # warm-up
            run()
        seconds: dict[str, list[float]] = {name: [] for name in [*steps, *parts]}
        for _ in range(args.rounds):  # each round times everything once, so a drifting load hits all alike
            for name, run in [*steps.items(), *parts.items()]:
                seconds[name].append(timed(run, torch.device("cpu")))
        ref = median(seconds["reference"])
        for name in parts:
            extra = {"optimizer": dict(params=optim_params), "dropout_bits": dict(bits=bit_count)}.get(name, {})
            emit(figure="floor_part_seconds", part=name, phase=phase, value=round(median(seconds[name]), 5), unit="s",
                 share=round(median(seconds[name]) / ref, 4), **extra, **common)
        floor = ref + sum(median(seconds[name]) for name in parts)
        emit(figure="step_seconds", phase=phase, reference_value=round(ref, 5),
             value=round(median(seconds["model"]), 5), unit="s", **common)
        emit(figure="floor_ratio", phase=phase, value=round(floor / ref, 3),
             unit="(reference step + floor parts) / reference step", **common)
        emit(figure="entity_branch_time_ratio", phase=phase, value=round(median(seconds["model"]) / ref, 3),
             unit="model step / reference step", **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
