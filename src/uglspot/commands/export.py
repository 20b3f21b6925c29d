"""``uglspot export``: write a trained model as one ONNX file (``uglspot.app.export``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.export import FORMATS, export_model
from uglspot.commands import parse_size

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained model to ONNX (runs without PyTorch; `spot --runtime onnx`)",
        description="Write the model of a run as one ONNX file: frames (B, T, 3, H, W), normalised, and the "
                    "entity tensors the model reads in; logits, per-class probabilities and entity attention out; "
                    "any batch size B. The file's metadata holds the classes, frame rate, clip length T, frame "
                    "size, normalisation and the run's inference settings, so `uglspot spot --model FILE.onnx` "
                    "runs it alone. ONNX Runtime and PyTorch then score one random window and the largest "
                    "differences are printed. Needs `pip install 'uglspot[onnx]'`.")
    parser.add_argument("run", type=Path, metavar="RUN_OR_MODEL_DIR",
                        help="a run directory of `uglspot train` (its best checkpoint) or a checkpoint directory")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="file format (default: onnx)")
    parser.add_argument("--out", type=Path, metavar="FILE.onnx",
                        help="where to write (default: RUN/model.onnx, where `spot --runtime onnx` looks)")
    parser.add_argument("--frame-size", type=parse_size, metavar="WIDTHxHEIGHT",
                        help="frame size of the videos to spot, for a model that keeps each video's aspect "
                             "ratio (no width in its inference.json); otherwise the model's own")
    parser.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                        help="torch.onnx exporter: torchscript (default; fast, no onnxscript) or dynamo "
                             "(torch.export; slower, needs onnxscript)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE.onnx if it exists")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    done = export_model(args.run, args.out, args.format, args.frame_size, args.exporter, args.overwrite,
                        check=not args.no_check)
    height, width = done.frame_size
    entities = f", {done.slots} entity slots" if done.slots else ""
    print(f"wrote {done.out} ({done.size_bytes / 2**20:.1f} MiB, {done.exporter} exporter, {done.seconds:.1f} s): "
          f"{done.model}, {len(done.classes)} classes, windows of {done.clip_len} frames of {width}x{height}"
          f"{entities}; inputs {', '.join(done.inputs)}; outputs {', '.join(done.outputs)}")
    if done.difference:
        print("ONNX Runtime vs PyTorch on a random window, max |difference|: "
              + ", ".join(f"{name} {value:.1e}" for name, value in done.difference.items()))
    return 0
