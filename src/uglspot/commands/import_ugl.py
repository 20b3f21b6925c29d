"""``uglspot import-ugl``: turn a checkpoint of the released UGL code into an
uglspot model folder (``uglspot.app.ugl_import``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.ugl_import import import_ugl
from uglspot.commands import frame_rate_or_native, positive_int

ORDER = 61


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-ugl", help="convert a checkpoint of the released UGL code into an uglspot model",
        description=(
            "Convert a checkpoint_NNN.pt of the released UGL code (github.com/Fsoft-AIC/"
            "unifying-global-local-feature, RegNet-Y 200MF/800MF + GSM + GRU, with or without GLIP features) "
            "into the uglr_rny002/uglr_rny008 model that computes its layers exactly and gives the same "
            "logits (e2e_* for a model trained without GLIP features), with an inference.json so that "
            "`uglspot spot` and `predict` take the folder. Its GLIP entity files become entity stores with "
            "`uglspot detect FILE.pt --detector glip-import`. The .pt file is read without unpickling code; "
            "a tensor that does not map, or a weight the model lacks, is an error naming the key."))
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT.pt", help="the release's checkpoint_NNN.pt")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR",
                        help="folder to write model.safetensors, config.json and inference.json into")
    parser.add_argument("--config", type=Path, metavar="CONFIG.json",
                        help="its config.json (default: config.json beside the checkpoint)")
    parser.add_argument("--classes", type=Path, metavar="class.txt",
                        help="the dataset's class list (checked against num_classes; default class1..classK)")
    parser.add_argument("--fps", type=frame_rate_or_native, default=None,
                        help="the rate the release's frames were extracted at (SoccerNet: 2; default: native, "
                             "each video's own rate)")
    parser.add_argument("--height", type=positive_int, default=224, help="decoded frame height (default 224)")
    parser.add_argument("--width", type=positive_int, default=None,
                        help="decoded frame width (default: keep the aspect ratio)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = import_ugl(args.checkpoint, args.out, args.config, args.classes, args.fps, args.height, args.width,
                       args.overwrite)
    for note in model.notes:
        print(f"note: {note}")
    print(f"wrote {model.variant} ({model.num_classes} classes, clip_len {model.clip_len}, {model.loss} loss) "
          f"to {model.out}")
    return 0
