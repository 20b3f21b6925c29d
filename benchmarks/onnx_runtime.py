"""Inference speed on this CPU: ONNX Runtime running the file `uglspot export`
writes against PyTorch running the same model, in the same run, on the same
windows. Prints one JSON line per figure.

Models: the demo's two variants at the demo's sizes (``uglspot demo``):
``e2e_rny002`` and ``ugl_rny002`` (the product's recipe, stored detector
features of 256 dims with each box's place, size and score, cross-entropy),
windows of T=32 frames of 128×72, 16 entity slots (70 % filled), 7 classes,
B=4 windows per call (the demo's inference batch). Random weights: speed does
not depend on them. Each model is exported with each of ``--exporters``
(``onnx.export_s``, and ``onnx.max_abs_diff`` of its file against PyTorch);
the first one's file is timed: each round times one call of each runtime, alternating, so a
drifting load hits both alike. ``frames_per_s`` is the median over rounds;
``onnx_over_torch`` the median of the per-round ratios; ``max_abs_diff`` the
largest |ONNX Runtime − PyTorch| of the probabilities on the timed windows.
Both runtimes get the same thread count (``--threads``, default torch's).
PyTorch runs in fp32 (``torch``) and, on a CPU with native bf16, also under
bf16 autocast as the demo spots there (``torch_bf16``). Usage:

    PYTHONPATH=src python benchmarks/onnx_runtime.py [--threads 1] [--rounds 10] [--exporters torchscript dynamo]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from uglspot.engine.infer import InferenceSettings
from uglspot.engine.onnx_export import EXPORTERS, SpotterGraph, example_inputs, export_onnx
from uglspot.engine.runtime import cpu_has_bf16
from uglspot.model.spotter import create_model

DEMO_OPTIONS = {"e2e_rny002": {"loss": "ce"},
                "ugl_rny002": {"loss": "ce", "entity_source": "detector", "entity_geometry": True,
                               "entity_feat_dim": 256, "num_entity_classes": 6}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEMO_OPTIONS), choices=list(DEMO_OPTIONS))
    parser.add_argument("--batch", type=int, default=4, help="windows per call (the demo's infer batch)")
    parser.add_argument("--frames", type=int, default=32, help="frames per window (the demo's clip_len)")
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--slots", type=int, default=16, help="entity slots per frame")
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each runtime")
    parser.add_argument("--rounds", type=int, default=10, help="timed calls of each runtime")
    parser.add_argument("--exporters", nargs="+", default=["torchscript"], choices=list(EXPORTERS),
                        help="export with each (timed, checked); inference is timed on the first one's file")
    parser.add_argument("--threads", type=int, help="CPU threads for both runtimes (default: torch's choice)")
    return parser.parse_args(argv)


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(name: str, args: argparse.Namespace, folder: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, args.classes, clip_len=args.frames, **DEMO_OPTIONS[name]).eval()
    settings = InferenceSettings(classes=[f"c{i}" for i in range(args.classes)], clip_len=args.frames, fps=8.0,
                                 height=args.height, width=args.width, entity_slots=args.slots)
    inputs = example_inputs(model.config, (args.height, args.width), args.slots, args.batch, seed=1)
    feeds = {key: value.numpy() for key, value in inputs.items()}
    with torch.inference_mode():
        want = SpotterGraph(model).eval()(*inputs.values())[1].numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    sessions = []
    for exporter in args.exporters:
        written = export_onnx(model, settings, folder / f"{name}-{exporter}.onnx", exporter=exporter)
        emit(figure="onnx.export_s", model=name, exporter=exporter, value=round(written.seconds, 2), unit="s",
             size_mib=round(written.path.stat().st_size / 2**20, 1))
        sessions.append(ort.InferenceSession(str(written.path), options, providers=["CPUExecutionProvider"]))
        got = sessions[-1].run(None, feeds)[1]
        emit(figure="onnx.max_abs_diff", model=name, exporter=exporter, output="probs", batch=args.batch,
             value=float(np.abs(got - want).max()))
    session = sessions[0]
    graph = SpotterGraph(model).eval()
    bf16 = cpu_has_bf16()

    def torch_call(autocast: bool = False):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return graph(*inputs.values())

    runtimes = {"torch": torch_call, "onnxruntime": lambda: session.run(None, feeds)}
    if bf16:
        runtimes["torch_bf16"] = lambda: torch_call(True)
    for _ in range(args.warmup):
        for call in runtimes.values():
            call()
    times: dict[str, list[float]] = {key: [] for key in runtimes}
    for _ in range(args.rounds):
        for key, call in runtimes.items():
            times[key].append(timed(call))
    frames = args.batch * args.frames
    for key, values in times.items():
        emit(figure="onnx.infer_frames_per_s", model=name, runtime=key, value=round(frames / float(np.median(values)), 1),
             unit="frames/s", batch=args.batch, frames=args.frames, size=f"{args.width}x{args.height}",
             threads=torch.get_num_threads(), rounds=args.rounds)
    ratios = [t / o for t, o in zip(times["torch"], times["onnxruntime"])]
    emit(figure="onnx.onnx_over_torch", model=name, value=round(float(np.median(ratios)), 3), unit="x",
         exporter=args.exporters[0], reference="torch fp32, same windows, same threads, alternating calls")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    emit(figure="onnx.versions", torch=torch.__version__, onnxruntime=ort.__version__,
         cpu_bf16=cpu_has_bf16(), threads=torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="uglspot-onnx-bench-") as folder:
        for name in args.models:
            measure(name, args, Path(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
