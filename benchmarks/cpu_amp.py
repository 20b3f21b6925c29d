"""fp32 vs bf16 autocast on CPU for the demo's models (e2e_rny002 and
ugl_rny002 at the demo's size: B=4 clips of 32 frames, 128×72, 16 entity
slots with detector features, learned selection). Both precisions are timed
in the same run, interleaved, so the ratio survives a noisy machine. Prints
one JSON line per figure (median seconds per training step / per inference
batch, and the bf16 speed-up).

    PYTHONPATH=src python benchmarks/cpu_amp.py [--threads 2] [--repeats 6]

On a CPU without native bf16 (no AVX512-BF16 or AMX) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from uglspot.engine.runtime import cpu_has_bf16
from uglspot.engine.schedule import adamw
from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model

B, T, H, W, N, K = 4, 32, 72, 128, 16, 7


def inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, EntityBatch]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(B, T, 3, H, W, generator=g)
    targets = F.one_hot(torch.randint(0, K + 1, (B, T), generator=g), K + 1).float()
    xy = torch.rand(B, T, N, 2, generator=g) * 0.8
    entities = EntityBatch(boxes=torch.cat([xy, xy + 0.1], -1), cls=torch.randint(0, 8, (B, T, N), generator=g),
                           score=torch.rand(B, T, N, generator=g), mask=torch.rand(B, T, N, generator=g) > 0.3,
                           feat=torch.randn(B, T, N, 256, generator=g))
    return frames, targets, entities


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_has_bf16():
        print(json.dumps({"figure": "cpu_amp", "skipped": "this CPU has no native bf16"}))
        return
    frames, targets, entities = inputs(0)
    for name in ("e2e_rny002", "ugl_rny002"):
        torch.manual_seed(0)
        options = (dict(entity_source="detector", entity_slots=N, entity_selection="learned", entity_geometry=True,
                        num_entity_classes=8) if name.startswith("ugl") else {})
        model = create_model(name, K, clip_len=T, loss="ce", **options)
        optimiser = adamw(model, lr=1e-4, weight_decay=0.01)
        ents = entities if model.config.use_entities else None
        results: dict[str, dict[str, list[float]]] = {"fp32": {"train": [], "infer": []},
                                                       "bf16": {"train": [], "infer": []}}

        def step(precision: str) -> None:
            model.train()
            with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
                output = model(frames, ents)
            loss = model.training_loss(output, targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        def infer(precision: str) -> None:
            model.eval()
            with torch.inference_mode(), (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                                          else nullcontext()):
                model(frames, ents)

        for _ in range(2):  # interleave the precisions so drifting load hits both
            for precision in ("fp32", "bf16"):
                results[precision]["train"] += timed(lambda: step(precision), args.repeats // 2)
                results[precision]["infer"] += timed(lambda: infer(precision), args.repeats // 2)
        for phase in ("train", "infer"):
            fp32, bf16 = (statistics.median(results[p][phase]) for p in ("fp32", "bf16"))
            for precision, value in (("fp32", fp32), ("bf16", bf16)):
                print(json.dumps({"figure": f"{phase}_s_per_batch", "model": name, "precision": precision,
                                  "value": round(value, 4), "unit": "s", "batch": [B, T, H, W],
                                  "threads": args.threads}), flush=True)
            print(json.dumps({"figure": f"{phase}_bf16_speedup", "model": name, "value": round(fp32 / bf16, 3),
                              "unit": "x", "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
