"""Where one training step and one inference step of the spotting model
spend their time, part by part. Prints one JSON line per figure.

Parts: ``backbone``, ``roi_pooling`` (with the ``detector`` source: the look-up
of the stored features), ``entity_tokens``, ``selection``, ``entity_encoder``,
``fusion``, ``gru`` (every GRU head), ``loss``, and ``other``: the whole step
less the sum of the parts (the optimiser step, the environment projection,
the entity classifier, and what autograd does between the parts).

Every UGL model (``ugl_rny008``, ``ugl_rny002`` with each entity source and
selection; with ``--architectures paper`` the paper's ``ugl_paper_*``) runs
beside its global-only reference (``e2e_rny008``, ``e2e_rny002``) in the
same run. One step of each model runs with every part's method wrapped,
to record the inputs it gets and which of its outputs get a gradient. Then
each round times, model after model, the whole step and each part alone on
its recorded inputs: the forward under ``inference_mode``
for inference; for training the forward and the backward of the outputs that
got a gradient in the real step. ``value`` is the median over the rounds;
``share`` the median over the rounds of the part's time over the reference's
whole step of the same round, so that the shares of a UGL model's entity parts
add up to its entity branch's cost in units of the global-only step, and
survive a machine whose load drifts: ``entity_parts_share`` is the sum over
the parts only a UGL model has, ``entity_branch_time_ratio`` the whole
step's ratio (which also holds the recipe's second GRU head, the optimiser
on the branch's parameters and the machine's noise).

Sizes as ``model_speed.py``: on a GPU 224×398, B=8, T=100, 50 slots, AMP
(bf16), channels-last; on CPU B=1, T=16, 112×200, fp32. Usage:

    PYTHONPATH=src python benchmarks/model_parts.py [--backbones rny008] [--threads 1]

``gpu_suite.py`` calls ``main`` with an argument list.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from model_speed import add_malloc_option, emit, make_batch, malloc_setting, median, sync, timed
from uglspot.engine.schedule import adamw
from uglspot.model import create_model
from uglspot.model.shift import to_channels_last
from uglspot.model.spotter import UGLSpotter

# Each part: the methods, as (submodule path, method name), whose calls make it up.
PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "backbone": (("backbone", "forward"),),
    "roi_pooling": (("entity_tokens", "features"),),
    "entity_tokens": (("entity_tokens", "embed"),),
    "selection": (("aam", "select"),),
    "entity_encoder": (("aam", "encode"),),
    "fusion": (("fusion", "forward"),),
    "gru": (("head", "forward"), ("global_head", "forward")),
    "loss": (("", "training_loss"),),
}
# The parts only a UGL model has (its GRU heads and the rest are in "gru" and "other").
ENTITY_PARTS = ("roi_pooling", "entity_tokens", "selection", "entity_encoder", "fusion")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["rny008", "rny002"], choices=["rny008", "rny002"])
    parser.add_argument("--architectures", nargs="+", default=["recipe"], choices=["recipe", "paper"],
                        help="recipe: ugl_* (the product's UGL recipe); paper: ugl_paper_* (the paper's architecture)")
    parser.add_argument("--sources", nargs="+", default=["backbone", "detector"], choices=["backbone", "detector"])
    parser.add_argument("--selections", nargs="+", default=["learned", "hard"], choices=["learned", "hard"])
    parser.add_argument("--phases", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    parser.add_argument("--batch", type=int, help="clips per batch (GPU 8, CPU 1)")
    parser.add_argument("--frames", type=int, help="frames per clip (GPU 100, CPU 16)")
    parser.add_argument("--height", type=int, help="GPU 224, CPU 112")
    parser.add_argument("--width", type=int, help="GPU 398, CPU 200")
    parser.add_argument("--slots", type=int, default=50, help="entity slots per frame")
    parser.add_argument("--valid", type=float, default=0.4, help="fraction of slots holding an entity")
    parser.add_argument("--feat-dim", type=int, default=256, help="width of the detector features")
    parser.add_argument("--classes", type=int, default=17)
    parser.add_argument("--warmup", type=int, help="untimed rounds (GPU 2, CPU 1)")
    parser.add_argument("--rounds", type=int, help="timed rounds (GPU 5, CPU 3)")
    parser.add_argument("--amp-dtype", choices=["bf16", "fp16"], default="bf16", help="GPU autocast dtype")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_malloc_option(parser)
    return parser.parse_args(argv)


@dataclass
class Call:
    """One recorded call of a part's method: its inputs, and which of its
    output tensors got a gradient in the real step."""

    method: Callable
    args: tuple
    kwargs: dict
    got_grad: list[bool] = field(default_factory=list)


@dataclass
class Runner:
    """A model under test: its step, its reference, its recorded parts."""

    label: str  # the model's name, with the entity source and selection for UGL models
    model: UGLSpotter
    reference: str  # label of the global-only model it is set against
    record: dict[str, Any]  # source, selection: the JSON fields that tell the models apart
    optimizer: torch.optim.Optimizer
    calls: dict[str, list[Call]] = field(default_factory=dict)


def tensors_of(value: Any) -> list[torch.Tensor]:
    """The tensors in a (nested) output, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_of(item)]
    return []


def fresh(value: Any) -> Any:
    """The recorded inputs as new leaves (floating tensors keep whether they
    needed a gradient), so a replay's backward stops at the part."""
    if isinstance(value, torch.Tensor):
        leaf = value.detach()
        return leaf.requires_grad_(value.requires_grad) if leaf.is_floating_point() else leaf
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return type(value)(*(fresh(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(fresh(item) for item in value)
    return value  # records of inputs (EntityBatch) and plain values need no gradient


def recording(calls: list[Call], method: Callable) -> Callable:
    """``method`` that appends each of its calls to ``calls``."""

    def wrapper(*args, **kwargs):
        call = Call(method, fresh(args), fresh(kwargs))
        out = method(*args, **kwargs)
        outputs = tensors_of(out)
        call.got_grad = [False] * len(outputs)
        for i, tensor in enumerate(outputs):
            if tensor.requires_grad:
                tensor.register_hook(lambda grad, i=i: call.got_grad.__setitem__(i, True))
        calls.append(call)
        return out

    return wrapper


def record_parts(runner: Runner, step: Callable[[], None]) -> None:
    """Run ``step`` once with every part's method wrapped; keep each call."""
    model = runner.model
    runner.calls = {part: [] for part in PARTS}
    wrapped: list[tuple[Any, str]] = []
    for part, methods in PARTS.items():
        for path, name in methods:
            owner = getattr(model, path, None) if path else model
            if owner is None or not hasattr(owner, name):
                continue
            setattr(owner, name, recording(runner.calls[part], getattr(owner, name)))
            wrapped.append((owner, name))
    try:
        step()
    finally:
        for owner, name in wrapped:
            delattr(owner, name)


def replay(call: Call, train: bool) -> None:
    args, kwargs = fresh(call.args), fresh(call.kwargs)
    out = call.method(*args, **kwargs)
    if train:
        wanted = [t for t, got in zip(tensors_of(out), call.got_grad) if got]
        if wanted:
            torch.autograd.backward(wanted, [torch.ones_like(t) for t in wanted])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc = malloc_setting(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    defaults = dict(batch=8, frames=100, height=224, width=398, warmup=2, rounds=5) if gpu else \
        dict(batch=1, frames=16, height=112, width=200, warmup=1, rounds=3)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.amp_dtype]
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if gpu else nullcontext
    if gpu:
        torch.backends.cudnn.benchmark = True
    common = dict(device=str(torch.cuda.get_device_name(device) if gpu else "cpu"), batch=args.batch,
                  frames=args.frames, height=args.height, width=args.width, slots=args.slots, valid=args.valid,
                  amp=args.amp_dtype if gpu else "fp32", threads=torch.get_num_threads(), malloc=malloc,
                  rounds=args.rounds)
    frames, entities, targets = make_batch(args, args.batch, device, feat_dim=args.feat_dim)

    runners: list[Runner] = []
    for backbone in args.backbones:
        reference = f"e2e_{backbone}"
        variants = [(reference, {}, {})] + [
            ({"recipe": "ugl_", "paper": "ugl_paper_"}[architecture] + backbone,
             dict(entity_source=source, entity_selection=selection, entity_feat_dim=args.feat_dim),
             dict(source=source, selection=selection))
            for architecture in args.architectures for source in args.sources for selection in args.selections]
        for name, options, record in variants:
            torch.manual_seed(0)
            model = create_model(name, args.classes, clip_len=args.frames, entity_slots=args.slots, **options)
            model.to(device)
            if gpu:
                to_channels_last(model)
            label = "/".join([name, *record.values()])
            runners.append(Runner(label, model, reference, record,
                                  adamw(model, lr=1e-4, weight_decay=0.01)))

    def step_of(runner: Runner, phase: str) -> Callable[[], None]:
        model = runner.model
        inputs = (frames, entities if model.config.use_entities else None)

        def train_step() -> None:
            model.train()
            runner.optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = model(*inputs)
                loss = model.training_loss(out, targets)
            loss.backward()
            runner.optimizer.step()

        def infer_step() -> None:
            model.eval()
            with torch.inference_mode(), autocast():
                model(*inputs)

        return train_step if phase == "train" else infer_step

    def part_of(runner: Runner, part: str, phase: str) -> Callable[[], None]:
        train = phase == "train"

        def run_part() -> None:
            runner.model.train(train)
            with (nullcontext() if train else torch.inference_mode()), autocast():
                for call in runner.calls[part]:
                    replay(call, train)

        return run_part

    for phase in args.phases:
        for runner in runners:
            step = step_of(runner, phase)
            step()  # first call: allocations, lazy initialisations
            record_parts(runner, step)
        times: dict[tuple[str, str], list[float]] = {}
        for round_index in range(args.warmup + args.rounds):
            for runner in runners:  # model after model, each part after the whole step
                tasks = {"step": step_of(runner, phase)}
                tasks.update({part: part_of(runner, part, phase) for part, calls in runner.calls.items() if calls})
                for name, task in tasks.items():
                    seconds = timed(task, device)
                    if round_index >= args.warmup:
                        times.setdefault((runner.label, name), []).append(seconds)
        sync(device)
        for runner in runners:
            reference = times[runner.reference, "step"]
            parts = [name for (label, name) in times if label == runner.label and name != "step"]
            other = [step - sum(times[runner.label, name][i] for name in parts)
                     for i, step in enumerate(times[runner.label, "step"])]
            context = dict(model=runner.model.config.name, **runner.record, phase=phase, reference=runner.reference,
                           **common)
            for name, values in [*((n, times[runner.label, n]) for n in parts), ("other", other),
                                 ("step", times[runner.label, "step"])]:
                share = median([v / r for v, r in zip(values, reference)])
                emit(figure="part_seconds" if name != "step" else "step_seconds", part=name,
                     value=round(median(values), 5), unit="s", share=round(share, 4), **context)
            if runner.label != runner.reference:
                emit(figure="entity_branch_time_ratio", value=round(
                    median([v / r for v, r in zip(times[runner.label, "step"], reference)]), 3),
                    unit="step time / reference step time", **context)
                branch = [sum(times[runner.label, name][i] for name in ENTITY_PARTS) for i in range(len(reference))]
                emit(figure="entity_parts_share", value=round(median([v / r for v, r in zip(branch, reference)]), 4),
                     unit="entity parts' time / reference step time", parts=list(ENTITY_PARTS), **context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
