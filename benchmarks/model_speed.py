"""Training and inference speed of the spotting model, global-only (e2e) vs
UGL (entity branch), measured in the same run. Prints one JSON line per figure.

On a GPU: 224×398 frames, B=8, T=100, 50 entity slots, AMP (bf16 by default),
channels_last. On CPU (no GPU present): a reduced size (B=1, T=16, 112×200),
fp32. Usage:

    PYTHONPATH=src python benchmarks/model_speed.py [--compile] [--models e2e_rny008 ugl_rny008]
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

from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model
from uglspot.model.shift import to_channels_last


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["e2e_rny008", "ugl_rny008"])
    parser.add_argument("--batch", type=int, help="clips per batch (GPU 8, CPU 1)")
    parser.add_argument("--frames", type=int, help="frames per clip (GPU 100, CPU 16)")
    parser.add_argument("--height", type=int, help="GPU 224, CPU 112")
    parser.add_argument("--width", type=int, help="GPU 398, CPU 200")
    parser.add_argument("--slots", type=int, default=50, help="entity slots per frame")
    parser.add_argument("--valid", type=float, default=0.4, help="fraction of slots holding an entity")
    parser.add_argument("--classes", type=int, default=17)
    parser.add_argument("--warmup", type=int, help="untimed steps (GPU 5, CPU 1)")
    parser.add_argument("--iters", type=int, help="timed steps (GPU 20, CPU 3)")
    parser.add_argument("--amp-dtype", choices=["bf16", "fp16"], default="bf16", help="GPU autocast dtype")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile inference")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def make_batch(args, device):
    g = torch.Generator().manual_seed(0)
    B, T, H, W, N = args.batch, args.frames, args.height, args.width, args.slots
    frames = torch.randn(B, T, 3, H, W, generator=g)
    xy = torch.rand(B, T, N, 2, generator=g) * 0.8
    entities = EntityBatch(
        boxes=torch.cat([xy, xy + 0.02 + 0.18 * torch.rand(B, T, N, 2, generator=g)], dim=-1),
        cls=torch.randint(0, 6, (B, T, N), generator=g),
        score=torch.rand(B, T, N, generator=g),
        mask=torch.rand(B, T, N, generator=g) < args.valid,
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


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    defaults = dict(batch=8, frames=100, height=224, width=398, warmup=5, iters=20) if gpu else \
        dict(batch=1, frames=16, height=112, width=200, warmup=1, iters=3)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.amp_dtype]
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if gpu else nullcontext
    if gpu:
        torch.backends.cudnn.benchmark = True
    frames, entities, targets = make_batch(args, device)
    common = dict(device=str(torch.cuda.get_device_name(device) if gpu else "cpu"), batch=args.batch,
                  frames=args.frames, height=args.height, width=args.width, slots=args.slots,
                  valid=args.valid, amp=args.amp_dtype if gpu else "fp32", threads=torch.get_num_threads(),
                  steps=args.iters)
    clip_frames = args.batch * args.frames
    memory_unit = "GiB" if gpu else "GiB (process max RSS so far)"

    # Every model is built at once and the phases time one step of each in
    # turn, so a slowdown of the machine hits every model alike and the
    # ugl / e2e ratio stays fair; figures use the median step.
    steps: dict[str, dict[str, object]] = {}
    for name in args.models:
        model = create_model(name, args.classes, clip_len=args.frames).to(device)
        if gpu:
            to_channels_last(model)
        inputs = (frames, entities if model.config.use_entities else None)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=gpu)
        scaler = torch.amp.GradScaler("cuda", enabled=gpu and amp_dtype == torch.float16)

        def train_step(model=model, inputs=inputs, optimizer=optimizer, scaler=scaler):
            model.train()
            with autocast():
                out = model(*inputs)
                loss = model.loss(out.logits, targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

        def infer(runner, inputs=inputs, model=model):
            def step():
                model.eval()
                with torch.inference_mode(), autocast():
                    runner(*inputs)
            return step

        steps[name] = {"train": train_step, "infer_eager": infer(model)}
        if args.compile:
            steps[name]["infer_compiled"] = infer(torch.compile(model))

    seconds: dict[tuple[str, str], float] = {}
    for phase in ["train", "infer_eager"] + (["infer_compiled"] if args.compile else []):
        peaks = {}
        for name in args.models:  # warm-up, and the peak memory of one step
            for _ in range(args.warmup + (2 if phase == "infer_compiled" else 0)):
                steps[name][phase]()
            reset_peak(device)
            timed(steps[name][phase], device)
            peaks[name] = peak_gib(device)
        times: dict[str, list[float]] = {name: [] for name in args.models}
        for _ in range(args.iters):
            for name in args.models:
                times[name].append(timed(steps[name][phase], device))
        for name in args.models:
            seconds[name, phase] = median(times[name])
            figure = "train_frames_per_s" if phase == "train" else "infer_frames_per_s"
            mode = {"step": "forward+backward+AdamW"} if phase == "train" else {"mode": phase.split("_")[1]}
            emit(figure=figure, model=name, value=round(clip_frames / seconds[name, phase], 2), unit="frames/s",
                 best=round(clip_frames / min(times[name]), 2), **mode, **common)
            emit(figure=f"{phase.split('_')[0]}_peak_memory", model=name, **({} if phase == "train" else mode),
                 value=round(peaks[name], 3), unit=memory_unit, **common)
    for ugl in args.models:
        e2e = "e2e_" + ugl[4:]
        if not ugl.startswith("ugl_") or e2e not in args.models:
            continue
        for phase in sorted({p for (_, p) in seconds}):
            emit(figure="entity_branch_time_ratio", model=ugl, reference=e2e, phase=phase,
                 value=round(seconds[ugl, phase] / seconds[e2e, phase], 3), unit="ugl time / e2e time", **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
