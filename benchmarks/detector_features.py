"""What the paper's entity features cost: ``roi`` (RoIAlign of each kept box
on the detector's visual map) against ``query`` (the model's own per-box
embedding), per frame, for Grounding DINO and OWLv2, measured in one run on
the same model, frames and boxes. Prints one JSON line per figure.

Models are the real transformers classes with random weights: on a GPU the
released architectures (Grounding DINO tiny at 800x1333, OWLv2 base/16 at
960x960, bf16 autocast); on CPU (or ``--size tiny``) the tiny test models.
Every frame keeps ``--max-per-frame`` boxes (threshold 0), the most RoI work
a frame can ask for. Usage:

    PYTHONPATH=src python benchmarks/detector_features.py [--size tiny|full] [--iters 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from _detector_helpers import make_tiny_grounding_dino, make_tiny_owlv2  # noqa: E402  (the test models)

from uglspot.entities.backends import create_detector  # noqa: E402
from uglspot.entities.detector_settings import DetectorConfig  # noqa: E402


def emit(figure: str, value, unit: str, **context) -> None:
    print(json.dumps({"figure": figure, "value": value, "unit": unit, **context}), flush=True)


def seconds_per_call(detector, frames: torch.Tensor, device: str) -> float:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    detector.detect(frames)
    sync()
    return time.perf_counter() - start


def bench(name: str, model_dir: Path, frames: torch.Tensor, device: str, iters: int, per_frame: int) -> None:
    detectors = {kind: create_detector(DetectorConfig(name=name, model=str(model_dir), box_threshold=0.0,
                                                      text_threshold=0.0, max_per_frame=per_frame,
                                                      features=kind), device)
                 for kind in ("query", "roi")}
    boxes = [len(d["score"]) for d in detectors["roi"].detect(frames)]
    for detector in detectors.values():
        detector.detect(frames)  # warm-up (allocator, cuDNN)
    times: dict[str, list[float]] = {"query": [], "roi": []}
    for _ in range(iters):  # interleaved, so drift in machine load hits both kinds alike
        for kind, detector in detectors.items():
            times[kind].append(seconds_per_call(detector, frames, device))
    B = len(frames)
    detector = detectors["roi"]
    context = {"detector": name, "device": device, "dtype": str(detector.dtype).removeprefix("torch."),
               "frames": B, "frame": f"{frames.shape[-1]}x{frames.shape[-2]}",
               "input": "x".join(map(str, detector.input_size)), "boxes_per_frame": sum(boxes) / B,
               "iters": iters, "statistic": "median", "cpu_threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None}
    ms = {kind: 1000 * statistics.median(t) / B for kind, t in times.items()}
    emit(f"{name}.query_ms_per_frame", round(ms["query"], 3), "ms/frame", **context)
    emit(f"{name}.roi_ms_per_frame", round(ms["roi"], 3), "ms/frame", **context)
    emit(f"{name}.roi_vs_query", round(ms["roi"] / ms["query"], 3), "ratio of times (roi / query)", **context)
    emit(f"{name}.feat_dim", {kind: d.feat_dim for kind, d in detectors.items()}, "features per box", **context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "full"), default=None,
                        help="tiny test models or the released architectures (default: full on a GPU, else tiny)")
    parser.add_argument("--detectors", nargs="+", default=["grounding-dino", "owlv2"])
    parser.add_argument("--batch", type=int, default=None, help="frames per detector call (GPU 8, CPU 4)")
    parser.add_argument("--max-per-frame", type=int, default=50)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--device", default=None, help="default cuda when available, else cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared machine, waits in the thread pool swamp "
                             "small operations like RoIAlign on a few boxes)")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(args.threads)
    size = args.size or ("full" if device.startswith("cuda") else "tiny")
    batch = args.batch or (8 if device.startswith("cuda") else 4)
    height, width = (720, 1280) if size == "full" else (180, 320)
    frames = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    if device.startswith("cuda"):
        frames = frames.pin_memory()
    makers = {"grounding-dino": make_tiny_grounding_dino, "owlv2": make_tiny_owlv2}
    with tempfile.TemporaryDirectory(prefix="uglspot-bench-") as name:
        for detector in args.detectors:
            model_dir = makers[detector](Path(name) / detector, full_size=size == "full")
            bench(detector, model_dir, frames, device, args.iters, args.max_per_frame)


if __name__ == "__main__":
    main()
