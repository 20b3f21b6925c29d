"""``uglspot import-e2e-spot``: turn a released E2E-Spot checkpoint into an
uglspot model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    parser.add_argument("--into", choices=["ugl_rny002", "ugl_rny008", "ugl_paper_rny002", "ugl_paper_rny008"],
                        help="start this UGL variant instead of e2e_*: its backbone and global head (the only "
                             "GRU head of a ugl_paper_* model) from the checkpoint, the entity branch freshly "
                             "initialised")
    parser.add_argument("--classes", type=Path, metavar="class.txt",
                        help="the dataset's class list, stored with the model (checked against num_classes)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from uglspot.data.labels import read_class_list
    from uglspot.engine.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_foreign_checkpoint, save_model
    from uglspot.errors import UserError
    from uglspot.io import read_json, refuse_overwrite
    from uglspot.model.e2e_spot import convert_e2e_spot_state, load_converted, parse_e2e_spot_config, target_variant
    from uglspot.model.spotter import create_model

    config_path = args.config or args.checkpoint.parent / "config.json"
    setup = parse_e2e_spot_config(read_json(config_path), str(config_path))
    variant = target_variant(setup, args.into)
    out = args.out
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        refuse_overwrite(out / name, args.checkpoint, config_path)
    if not args.overwrite and ((out / CONFIG_FILE).exists() or (out / WEIGHTS_FILE).exists()):
        raise UserError(f"{out}: already holds a model; pass --overwrite to replace it or choose another --out")
    metadata = {"source": "e2e-spot", "checkpoint": str(args.checkpoint), "e2e_config": str(config_path),
                "dataset": setup.dataset}
    if args.classes:
        classes = read_class_list(args.classes)
        if len(classes) != setup.num_classes:
            raise UserError(f"{args.classes}: {len(classes)} classes but {config_path} says num_classes "
                            f"{setup.num_classes}; give the model's own class.txt")
        metadata["classes"] = classes

    state = load_foreign_checkpoint(args.checkpoint)
    model = create_model(variant, setup.num_classes, clip_len=setup.clip_len, shift=setup.shift)
    with torch.no_grad():
        load_converted(model, convert_e2e_spot_state(state, model, str(args.checkpoint)))
    save_model(model, out, metadata=metadata)
    print(f"wrote {variant} ({setup.num_classes} classes, clip_len {setup.clip_len}, shift {setup.shift}) to {out}")
    return 0
