"""``uglspot import-e2e-spot``: turn a released E2E-Spot checkpoint into an
uglspot model folder (``uglspot.app.e2e_import``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.e2e_import import UGL_TARGETS, import_e2e_spot

ORDER = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-e2e-spot", help="convert a released E2E-Spot checkpoint into an uglspot model",
        description=(
            "Convert an E2E-Spot checkpoint (RegNet-Y 200MF/800MF + GSM + GRU, e.g. from "
            "github.com/jhong93/e2e-spot-models) into the matching e2e_rny002/e2e_rny008 model, which gives "
            "the same logits, or with --into into a UGL model whose global branch and GRU head start from it. "
            "The .pt file is read without unpickling code."))
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT.pt", help="E2E-Spot checkpoint_NNN.pt")
    parser.add_argument("--config", type=Path, metavar="CONFIG.json",
                        help="its config.json (default: config.json beside the checkpoint)")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR",
                        help="folder to write model.safetensors and config.json into")
    parser.add_argument("--into", choices=list(UGL_TARGETS),
                        help="start this UGL variant instead of e2e_*: its backbone and global head (the only "
                             "GRU head of a ugl_paper_* model) from the checkpoint, the entity branch freshly "
                             "initialised")
    parser.add_argument("--classes", type=Path, metavar="class.txt",
                        help="the dataset's class list, stored with the model (checked against num_classes)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = import_e2e_spot(args.checkpoint, args.out, args.config, args.into, args.classes, args.overwrite)
    print(f"wrote {model.variant} ({model.num_classes} classes, clip_len {model.clip_len}, shift {model.shift}) "
          f"to {model.out}")
    return 0
