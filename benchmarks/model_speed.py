"""Training and inference speed of the spotting model, global-only (e2e) vs
UGL (entity branch), measured in the same run. Prints one JSON line per figure.

On a GPU: 224×398 frames, B=8, T=100, 50 entity slots, AMP (bf16 by default),
channels_last. On CPU (no GPU present): a reduced size (B=1, T=16, 112×200),
fp32. Usage:

    PYTHONPATH=src python benchmarks/model_speed.py [--compile] [--models e2e_rny008 ugl_rny008]
    PYTHONPATH=src python benchmarks/model_speed.py --phases infer --infer-batches 8 16 32

Phases: ``train`` (forward, backward, AdamW step), ``infer`` (forward under
``inference_mode``), and the same two through ``torch.compile``
(``train_compiled``, ``infer_compiled``; ``--compile`` adds both). Inference
is timed at every ``--infer-batches`` size; ``infer_best_batch`` names the
size with the most frames/s. ``gpu_suite.py`` calls ``main`` with an argument
list.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from uglspot.engine.schedule import adamw
from uglspot.entities.batch import EntityBatch
from uglspot.memory import keep_freed_memory
from uglspot.model import create_model
from uglspot.model.shift import to_channels_last

PHASES = ("train", "infer", "train_compiled", "infer_compiled")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["e2e_rny008", "ugl_rny008"])
    parser.add_argument("--batch", type=int, help="clips per training batch (GPU 8, CPU 1)")
    parser.add_argument("--infer-batches", type=int, nargs="+", metavar="B",
                        help="clips per inference batch, each timed (default: --batch)")
    parser.add_argument("--frames", type=int, help="frames per clip (GPU 100, CPU 16)")
    parser.add_argument("--height", type=int, help="GPU 224, CPU 112")
    parser.add_argument("--width", type=int, help="GPU 398, CPU 200")
    parser.add_argument("--slots", type=int, default=50, help="entity slots per frame")
    parser.add_argument("--valid", type=float, default=0.4, help="fraction of slots holding an entity")
    parser.add_argument("--classes", type=int, default=17)
    parser.add_argument("--warmup", type=int, help="untimed steps (GPU 5, CPU 1)")
    parser.add_argument("--iters", type=int, help="timed steps (GPU 20, CPU 3)")
    parser.add_argument("--amp-dtype", choices=["bf16", "fp16"], default="bf16", help="GPU autocast dtype")
    parser.add_argument("--phases", nargs="+", choices=PHASES, help="what to time (default: train infer)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile training and inference")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend; 'none' runs the compiled phases uncompiled (dry runs)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_malloc_option(parser)
    return parser.parse_args(argv)


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1. (The CLI's own types live in
    uglspot.commands, which benchmarks do not import: tests/test_layout.py.)"""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def add_cpu_sizes(parser: argparse.ArgumentParser) -> None:
    """The size options at this script's CPU size (B=1, T=16, 112×200, 50
    slots of which 40 % filled), the threads and the malloc option: one set
    for the CPU-only scripts that time the entity branch (entity_floor.py,
    entity_options.py)."""
    parser.add_argument("--batch", type=positive, default=1)
    parser.add_argument("--frames", type=positive, default=16)
    parser.add_argument("--height", type=positive, default=112)
    parser.add_argument("--width", type=positive, default=200)
    parser.add_argument("--slots", type=positive, default=50)
    parser.add_argument("--valid", type=fraction, default=0.4, help="fraction of slots holding an entity")
    parser.add_argument("--classes", type=positive, default=17)
    parser.add_argument("--threads", type=positive, help="CPU threads for torch (default: torch's choice)")
    add_malloc_option(parser)


def add_malloc_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default malloc settings instead of those the uglspot command sets "
                             "(uglspot.memory.keep_freed_memory)")


def malloc_setting(args: argparse.Namespace) -> str:
    """Apply the uglspot command's malloc setting unless ``--default-malloc``;
    the JSON field that says which one the figures ran with."""
    return "default" if args.default_malloc or not keep_freed_memory() else "keep_freed"


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def make_batch(args: argparse.Namespace, batch: int, device: torch.device, feat_dim: int | None = None):
    """Frames (B, T, 3, H, W), entities (with ``feat_dim``-wide detector
    features when given) and one-hot targets (B, T, K+1), all from seed 0."""
    g = torch.Generator().manual_seed(0)
    B, T, H, W, N = batch, args.frames, args.height, args.width, args.slots
    frames = torch.randn(B, T, 3, H, W, generator=g)
    xy = torch.rand(B, T, N, 2, generator=g) * 0.8
    entities = EntityBatch(
        boxes=torch.cat([xy, xy + 0.02 + 0.18 * torch.rand(B, T, N, 2, generator=g)], dim=-1),
        cls=torch.randint(0, 6, (B, T, N), generator=g),
        score=torch.rand(B, T, N, generator=g),
        mask=torch.rand(B, T, N, generator=g) < args.valid,
        feat=None if feat_dim is None else torch.randn(B, T, N, feat_dim, generator=g),
    )
    targets = F.one_hot(torch.randint(0, args.classes + 1, (B, T), generator=g), args.classes + 1).float()
    return frames.to(device), entities.to(device), targets.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB, whole process


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def timed(step, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def model_step(model: torch.nn.Module, runner: torch.nn.Module, inputs: tuple, targets: torch.Tensor,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, autocast, train: bool):
    """One training step of ``model`` through ``runner`` (it, or its compiled
    form): forward, backward and the optimiser; or one inference forward."""

    def train_step():
        model.train()
        with autocast():
            out = runner(*inputs)
            loss = model.training_loss(out, targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def infer_step():
        model.eval()
        with torch.inference_mode(), autocast():
            runner(*inputs)

    return train_step if train else infer_step


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc = malloc_setting(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    defaults = dict(batch=8, frames=100, height=224, width=398, warmup=5, iters=20) if gpu else \
        dict(batch=1, frames=16, height=112, width=200, warmup=1, iters=3)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    phases = args.phases or ["train", "infer"] + (["train_compiled", "infer_compiled"] if args.compile else [])
    infer_batches = args.infer_batches or [args.batch]
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.amp_dtype]
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if gpu else nullcontext
    if gpu:
        torch.backends.cudnn.benchmark = True
    common = dict(device=str(torch.cuda.get_device_name(device) if gpu else "cpu"),
                  frames=args.frames, height=args.height, width=args.width, slots=args.slots,
                  valid=args.valid, amp=args.amp_dtype if gpu else "fp32", threads=torch.get_num_threads(),
                  malloc=malloc, steps=args.iters)
    memory_unit = "GiB" if gpu else "GiB (process max RSS so far)"
    batches: dict[int, tuple] = {}

    def inputs_of(batch: int):
        if batch not in batches:
            batches[batch] = make_batch(args, batch, device)
        return batches[batch]

    def compiled(module: torch.nn.Module) -> torch.nn.Module:
        return module if args.compile_backend == "none" else torch.compile(module, backend=args.compile_backend)

    # Every model is built at once and each run (phase, batch size) times
    # one step of each model in turn, so a slowdown of the machine hits
    # every model alike and the ugl / e2e ratio stays fair; figures use the
    # median step.
    runners: dict[str, dict[str, torch.nn.Module]] = {}
    optimizers = {}
    for name in args.models:
        model = create_model(name, args.classes, clip_len=args.frames).to(device)
        if gpu:
            to_channels_last(model)
        runners[name] = {"eager": model}
        if any(p.endswith("_compiled") for p in phases):
            runners[name]["compiled"] = compiled(model)
        optimizers[name] = (adamw(model, lr=1e-4, weight_decay=0.01),
                            torch.amp.GradScaler("cuda", enabled=gpu and amp_dtype == torch.float16))

    def step_of(name: str, phase: str, batch: int):
        model = runners[name]["eager"]
        runner = runners[name]["compiled" if phase.endswith("_compiled") else "eager"]
        frames, entities, targets = inputs_of(batch)
        inputs = (frames, entities if model.config.use_entities else None)
        optimizer, scaler = optimizers[name]
        return model_step(model, runner, inputs, targets, optimizer, scaler, autocast, phase.startswith("train"))

    seconds: dict[tuple[str, str, int], float] = {}
    for phase in phases:
        kind, _, compiled_suffix = phase.partition("_")
        mode = "compiled" if compiled_suffix else "eager"
        for batch in [args.batch] if kind == "train" else infer_batches:
            steps = {name: step_of(name, phase, batch) for name in args.models}
            peaks = {}
            for name in args.models:  # warm-up (compilation included), and the peak memory of one step
                for _ in range(args.warmup + (2 if compiled_suffix else 0)):
                    steps[name]()
                reset_peak(device)
                timed(steps[name], device)
                peaks[name] = peak_gib(device)
            times: dict[str, list[float]] = {name: [] for name in args.models}
            for _ in range(args.iters):
                for name in args.models:
                    times[name].append(timed(steps[name], device))
            clip_frames = batch * args.frames
            context = dict(mode=mode, batch=batch, **common)
            if kind == "train":
                context["step"] = "forward+backward+AdamW"
            if compiled_suffix:
                context["compile_backend"] = args.compile_backend
            for name in args.models:
                seconds[name, phase, batch] = median(times[name])
                emit(figure=f"{kind}_frames_per_s", model=name, value=round(clip_frames / seconds[name, phase, batch], 2),
                     unit="frames/s", best=round(clip_frames / min(times[name]), 2), **context)
                emit(figure=f"{kind}_peak_memory", model=name, value=round(peaks[name], 3), unit=memory_unit,
                     **context)
        if kind == "infer" and len(infer_batches) > 1:
            for name in args.models:
                best = max(infer_batches, key=lambda b: b / seconds[name, phase, b])
                emit(figure="infer_best_batch", model=name, mode=mode, value=best, unit="clips per batch",
                     tried=infer_batches, **common)
    for ugl in args.models:
        e2e = "e2e_" + ugl[4:]
        if not ugl.startswith("ugl_") or e2e not in args.models:
            continue
        for phase, batch in sorted({(p, b) for (_, p, b) in seconds}):
            emit(figure="entity_branch_time_ratio", model=ugl, reference=e2e, phase=phase, batch=batch,
                 value=round(seconds[ugl, phase, batch] / seconds[e2e, phase, batch], 3),
                 unit="ugl time / e2e time", **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
