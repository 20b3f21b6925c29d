"""What each way of changing the UGL recipe would do to the entity branch's
cost: the step time of each option over the global-only model's, all timed
in the same rounds, one after the other. Prints one JSON line per figure.

The recipe's cost at the CPU size sits above what its layers allow to be
cut (``entity_floor.py``); these are the options that change its numbers
instead, each against ``e2e_rny008`` (``reference``):

- ``recipe``: ``ugl_rny008`` as shipped (learned selection, entity
  classifier, global head, per-class head choice);
- ``recipe_hard``: the recipe with the paper's hard selection, so the
  entity encoder reads only the kept entities;
- ``recipe_one_head``: the recipe without its global head (one GRU head,
  the fused one, as in the paper);
- ``paper``: ``ugl_paper_rny008``, the paper's architecture (hard
  selection, one head, no entity classifier);
- ``recipe_bf16`` (on a CPU with native bf16): the recipe under bf16
  autocast against the global-only model under bf16 autocast.

Each option's ``entity_branch_time_ratio`` is the median over the rounds of
its step time over the reference's step time of the same round (bf16 over
the reference's bf16 step). Sizes as ``model_speed.py`` on CPU: B=1, T=16,
112×200, 50 slots of which 40 % filled, fp32. Usage:

    PYTHONPATH=src python benchmarks/entity_options.py --threads 1 [--rounds 9]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any

import torch

from model_speed import (add_cpu_sizes, emit, make_batch, malloc_setting, median, model_step, positive,
                         timed)
from uglspot.engine.runtime import cpu_has_bf16
from uglspot.engine.schedule import adamw
from uglspot.model import create_model

ONE_HEAD = {"global_head": False, "isolate_global": False}
# option: (model, SpotterConfig overrides, bf16 autocast)
OPTIONS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "reference": ("e2e_rny008", {}, False),
    "recipe": ("ugl_rny008", {}, False),
    "recipe_hard": ("ugl_rny008", {"entity_selection": "hard"}, False),
    "recipe_one_head": ("ugl_rny008", ONE_HEAD, False),
    "paper": ("ugl_paper_rny008", {}, False),
    "reference_bf16": ("e2e_rny008", {}, True),
    "recipe_bf16": ("ugl_rny008", {}, True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cpu_sizes(parser)
    parser.add_argument("--rounds", type=positive, default=9, help="timed rounds after two warm-up rounds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc = malloc_setting(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames, entities, targets = make_batch(args, args.batch, torch.device("cpu"))
    options = {name: option for name, option in OPTIONS.items() if not option[2] or cpu_has_bf16()}
    common = dict(device="cpu", batch=args.batch, frames=args.frames, height=args.height, width=args.width,
                  slots=args.slots, valid=args.valid, threads=torch.get_num_threads(), malloc=malloc,
                  rounds=args.rounds)
    steps = {}
    for name, (model_name, overrides, bf16) in options.items():
        torch.manual_seed(0)
        model = create_model(model_name, args.classes, clip_len=args.frames, **overrides)
        inputs = (frames, entities if model.config.use_entities else None)
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
        for phase in ("train", "infer"):
            steps[name, phase] = model_step(model, model, inputs, targets, adamw(model, lr=1e-4, weight_decay=0.01),
                                            torch.amp.GradScaler("cpu", enabled=False), autocast, phase == "train")
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
    for round_ in range(args.rounds + 2):  # each round times every option once: a drifting load hits all alike
        for key, step in steps.items():
            elapsed = timed(step, torch.device("cpu"))
            if round_ >= 2:
                seconds[key].append(elapsed)
    for phase in ("train", "infer"):
        for name, (model_name, _, bf16) in options.items():
            reference = "reference_bf16" if bf16 else "reference"
            ratio = median([t / r for t, r in zip(seconds[name, phase], seconds[reference, phase])])
            emit(figure="entity_branch_time_ratio", option=name, model=model_name, phase=phase,
                 value=round(ratio, 3), seconds=round(median(seconds[name, phase]), 5),
                 unit="option step / reference step", amp="bf16" if bf16 else "fp32", **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
