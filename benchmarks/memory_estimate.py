"""How close preflight's memory estimate (``uglspot.engine.preflight``) comes
to the memory one real step takes on this machine's CPU (fp32). Each case
runs in a fresh process: the peak RSS of one training step (forward, loss,
backward) or one forward pass under ``inference_mode``, above the RSS just
before it, against the estimate's activation bytes for the same shape.
Prints one JSON line per case. Usage:

    PYTHONPATH=src python benchmarks/memory_estimate.py [--cases e2e_rny008:1:16:224:398:train ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

DEFAULT_CASES = ["e2e_rny002:1:16:224:398:train", "e2e_rny008:1:16:224:398:train",
                 "ugl_rny008:1:16:224:398:train", "e2e_rny008:2:32:224:398:infer"]


def measure(model_name: str, batch: int, frames: int, height: int, width: int, mode: str) -> dict:
    import torch
    import torch.nn.functional as F

    from uglspot.entities.batch import EntityBatch
    from uglspot.model import create_model

    torch.set_num_threads(1)
    entities = model_name.startswith("ugl")
    options = dict(clip_len=frames, entity_slots=50, entity_source="detector", entity_feat_dim=256) if entities \
        else dict(clip_len=frames)
    model = create_model(model_name, 17, **options)
    g = torch.Generator().manual_seed(0)
    B, T, N = batch, frames, 50
    x = torch.randn(B, T, 3, height, width, generator=g)
    xy = torch.rand(B, T, N, 2, generator=g) * 0.8
    batch_entities = EntityBatch(boxes=torch.cat([xy, xy + 0.1], -1), cls=torch.randint(0, 6, (B, T, N), generator=g),
                                 score=torch.rand(B, T, N, generator=g), mask=torch.rand(B, T, N, generator=g) < 0.4,
                                 feat=torch.randn(B, T, N, 256, generator=g)) if entities else None
    targets = F.one_hot(torch.randint(0, 18, (B, T), generator=g), 18).float()
    with open("/proc/self/statm") as handle:
        before = int(handle.read().split()[1]) * resource.getpagesize()
    if mode == "train":
        model.train()
        model.training_loss(model(x, batch_entities), targets).backward()
    else:
        model.eval()
        with torch.inference_mode():
            model(x, batch_entities)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"step_bytes": peak - before, "backbone": model.config.backbone, "entities": entities}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, metavar="MODEL:B:T:H:W:train|infer")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a case measured in this process
    args = parser.parse_args(argv)
    if args.one:
        name, *numbers, mode = args.one.split(":")
        print(json.dumps(measure(name, *map(int, numbers), mode)))
        return 0
    from uglspot.engine.preflight import ACTIVATION_BYTES, ENTITY_SLOT_BYTES, GIB

    for case in args.cases:
        name, b, t, h, w, mode = case.split(":")
        done = subprocess.run([sys.executable, __file__, "--one", case], capture_output=True, text=True, check=True)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        frames, pixels = int(b) * int(t), int(h) * int(w)
        estimate = frames * pixels * ACTIVATION_BYTES[(measured["backbone"], mode, "fp32")]
        if mode == "train" and measured["entities"]:
            estimate += frames * 50 * ENTITY_SLOT_BYTES
        print(json.dumps({"figure": "step_memory_cpu_fp32", "case": case, "measured_gib": round(
            measured["step_bytes"] / GIB, 3), "estimated_gib": round(estimate / GIB, 3),
            "ratio": round(estimate / max(1, measured["step_bytes"]), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
