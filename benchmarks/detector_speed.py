"""Throughput (images/s) of the entity detectors through uglspot's wrapper
(uint8 720p frames in, detections out) and of the bare model forward on the
same batch. Prints one JSON line per figure.

The models are the real architectures of the backends' default hub models
(Grounding DINO tiny: Swin-T and BERT-base; OWLv2 base/16 at 960×960) with
random weights and a small offline tokenizer (``tests/_detector_helpers.py``),
so no download is needed; speed does not depend on the weights. ``--tiny``
builds the tests' tiny models instead (dry runs).

    PYTHONPATH=src python benchmarks/detector_speed.py [--detectors grounding-dino owlv2] [--dtypes bfloat16 float16]

``decode_speed.py`` and ``gpu_suite.py`` use the functions below.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def emit(figure: str, value, unit: str, **context) -> None:
    print(json.dumps({"figure": figure, "value": value, "unit": unit, **context}), flush=True)


def write_random_detector(name: str, directory: Path, tiny: bool = False) -> Path:
    """Save a randomly initialised ``name`` backend model (``grounding-dino``
    or ``owlv2``) with its processor into ``directory``: the released
    architecture, or the tests' tiny one. Both come from the tests' helpers,
    the one place that knows how to build them offline."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    from _detector_helpers import make_tiny_grounding_dino, make_tiny_owlv2

    makers = {"grounding-dino": make_tiny_grounding_dino, "owlv2": make_tiny_owlv2}
    if name not in makers:
        raise ValueError(f"unknown detector {name!r}; choose grounding-dino or owlv2")
    return makers[name](directory, full_size=not tiny)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_detector(name: str, model_dir: Path, device: str, batch: int, iters: int, dtype: str = "auto",
                     image_size: tuple[int, int] | None = None, frame_size: tuple[int, int] = (720, 1280),
                     **extra) -> float:
    """Time ``detect`` (wrapper) and the bare forward of one backend on a
    batch of random uint8 frames; emits both and their ratio, returns the
    wrapper's images/s."""
    from uglspot.entities.backends import create_detector
    from uglspot.entities.detector_settings import DetectorConfig

    detector = create_detector(DetectorConfig(name=name, model=str(model_dir), image_size=image_size, dtype=dtype),
                               device)
    frames = torch.randint(0, 256, (batch, 3, *frame_size), dtype=torch.uint8)
    cuda = detector.device.type == "cuda"
    if cuda:
        frames = frames.pin_memory()
    pixels = detector.preprocess(frames)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(detector.device)

    def wrapper() -> None:
        detector.detect(frames)
        sync()

    @torch.inference_mode()
    def bare() -> None:
        detector.forward(pixels)
        sync()

    for fn in (wrapper, bare):
        fn()  # warm-up (cuDNN autotune, allocator)
    t_wrap = min(timed(wrapper) for _ in range(iters))
    t_bare = min(timed(bare) for _ in range(iters))
    context = {"detector": name, "input_size": list(detector.input_size),
               "input": f"{pixels.shape[-2]}x{pixels.shape[-1]}",
               "frames": f"{frame_size[0]}x{frame_size[1]}", "batch": batch, "dtype": str(detector.dtype).split(".")[-1],
               "device": torch.cuda.get_device_name(detector.device) if cuda else "cpu", "best_of": iters, **extra}
    emit("detector_images_per_s", round(batch / t_wrap, 2), "images/s", mode="wrapper", **context)
    emit("detector_images_per_s", round(batch / t_bare, 2), "images/s", mode="bare_forward", **context)
    emit("detector_wrapper_vs_bare", round(t_bare / t_wrap, 3), "ratio (>=0.9 is the target)", **context)
    return batch / t_wrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", nargs="+", default=["grounding-dino", "owlv2"], choices=["grounding-dino", "owlv2"])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16"], choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--batch", type=int, default=8, help="frames per batch (detect's default: 8)")
    parser.add_argument("--iters", type=int, default=5, help="timed batches; the best counts")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny models (dry runs)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uglspot-detector-") as tmp:
        for name in args.detectors:
            model_dir = write_random_detector(name, Path(tmp) / name, args.tiny)
            for dtype in args.dtypes:
                measure_detector(name, model_dir, args.device, args.batch, args.iters, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
