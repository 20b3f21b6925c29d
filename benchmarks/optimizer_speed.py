"""One AdamW step over each model's parameters: the engine's optimiser
(``uglspot.engine.schedule.adamw``: PyTorch's fused kernel where the device
has one) against the plain per-tensor loop that ``torch.optim.AdamW`` runs
on a CPU by default, in alternating rounds. Prints one JSON line per model.

    PYTHONPATH=src python benchmarks/optimizer_speed.py [--models e2e_rny008 ugl_rny008] [--threads 1] [--rounds 7]

The gradients are random (the step's cost does not depend on them); the
models are built as ``model_speed.py`` builds them (17 classes, clips of 16
frames, 50 entity slots).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from uglspot.engine.schedule import adamw
from uglspot.model import create_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["e2e_rny008", "ugl_rny008", "e2e_rny002", "ugl_rny002"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models:
        model = create_model(name, 17, clip_len=16, entity_slots=50)
        for parameter in model.parameters():
            parameter.grad = torch.randn_like(parameter) * 1e-3
        optimizers = {"engine": adamw(model, lr=1e-4, weight_decay=0.01),
                      "per_tensor_loop": torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01,
                                                           foreach=False)}
        seconds: dict[str, list[float]] = {kind: [] for kind in optimizers}
        for _ in range(args.rounds + 1):  # the first round allocates the optimisers' state: not timed
            for kind, optimizer in optimizers.items():
                start = time.perf_counter()
                optimizer.step()
                seconds[kind].append(time.perf_counter() - start)
        medians = {kind: sorted(times[1:])[len(times[1:]) // 2] for kind, times in seconds.items()}
        print(json.dumps(dict(figure="adamw_step_ms", model=name,
                              parameters=sum(p.numel() for p in model.parameters()),
                              engine_fused=bool(optimizers["engine"].defaults["fused"]),
                              engine=round(medians["engine"] * 1000, 1),
                              per_tensor_loop=round(medians["per_tensor_loop"] * 1000, 1),
                              speedup=round(medians["per_tensor_loop"] / medians["engine"], 2),
                              threads=args.threads, rounds=args.rounds, unit="ms (median over rounds)")),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
