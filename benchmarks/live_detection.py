"""What detection adds to each frame of ``uglspot spot --live --detector``:
seconds per frame through the Grounding DINO wrapper at batch 1 (how a live
run that keeps up detects), split into preprocessing, the model's forward
pass and post-processing (boxes and their RoI features), with every box up
to 50 kept (thresholds 0: the most RoI work a frame can ask for). One JSON
line per input size.

The model is the released Grounding DINO tiny architecture (Swin-T and
BERT-base) with random weights, built offline by ``detector_speed.py``'s
helper; ``--tiny`` times the tests' tiny model instead.

    PYTHONPATH=src python benchmarks/live_detection.py [--sizes default 448x800] [--iters 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_speed import write_random_detector  # noqa: E402


def time_frame(detector, frames: torch.Tensor) -> dict[str, float]:
    """Seconds of each part of ``detector.detect`` on ``frames`` (the same steps, timed one by one)."""
    from uglspot.entities.backends import captured_outputs

    with torch.inference_mode():
        began = time.perf_counter()
        pixels = detector.preprocess(frames)
        prepared = time.perf_counter()
        with captured_outputs(detector.map_modules) as caught:
            outputs = detector.forward(pixels)
        forwarded = time.perf_counter()
        maps = [caught[level] for level in range(len(detector.map_modules))]
        detections = detector.postprocess(outputs, maps, tuple(pixels.shape[-2:]))
        done = time.perf_counter()
    return {"preprocess": prepared - began, "forward": forwarded - prepared, "postprocess": done - forwarded,
            "total": done - began, "boxes": len(detections[0]["score"]), "input": list(pixels.shape[-2:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["default", "448x800"],
                        help="detector input sizes: default (the model's) or SHORTxLONG edges")
    parser.add_argument("--iters", type=int, default=3, help="timed frames per size, after one warm-up frame")
    parser.add_argument("--frame", default="720x1280", help="the decoded frame, HxW")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from uglspot.entities.backends import create_detector
    from uglspot.entities.detector_settings import DetectorConfig

    height, width = (int(v) for v in args.frame.split("x"))
    frames = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="uglspot-live-detection-") as tmp:
        model_dir = write_random_detector("grounding-dino", Path(tmp) / "gd", args.tiny)
        for size in args.sizes:
            image_size = None if size == "default" else tuple(int(v) for v in size.split("x"))
            detector = create_detector(DetectorConfig(name="grounding-dino", model=str(model_dir),
                                                      image_size=image_size, box_threshold=0.0,
                                                      text_threshold=0.0), args.device)
            time_frame(detector, frames)  # warm-up
            runs = [time_frame(detector, frames) for _ in range(args.iters)]
            parts = {part: sorted(round(run[part], 3) for run in runs)
                     for part in ("total", "preprocess", "forward", "postprocess")}
            print(json.dumps({"figure": "live_detection_s_per_frame", "model": "tiny" if args.tiny else
                              "grounding-dino-tiny architecture", "input": runs[0]["input"], "frame": args.frame,
                              "boxes": runs[0]["boxes"], "device": args.device, "threads": torch.get_num_threads(),
                              "seconds_sorted": parts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
