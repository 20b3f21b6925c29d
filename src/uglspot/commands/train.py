"""``uglspot train``: train a spotter from a YAML configuration."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a spotting model on labelled videos",
        description="Train a UGL spotter from a YAML configuration (see configs/). Writes the resolved "
                    "config, metrics.csv, steps.csv and checkpoints/{last,best} into the run directory. "
                    "Run several processes with torchrun, e.g. "
                    "`torchrun --nproc_per_node 4 -m uglspot train configs/finediving.yaml`.")
    parser.add_argument("config", nargs="?", type=Path,
                        help="training configuration (YAML); optional with --resume (the run's config.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=10 (repeatable)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last complete checkpoint")
    parser.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory (default: the config's out)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uglspot.engine.config import load_run_config
    from uglspot.engine.preflight import set_keys
    from uglspot.engine.train import check_saved_config, train
    from uglspot.errors import UserError

    overrides = list(args.overrides)
    if args.resume is not None:
        if args.out is not None and args.out.resolve() != args.resume.resolve():
            raise UserError(f"--out {args.out} and --resume {args.resume} differ; a resumed run stays in its directory")
        config_path = args.config or args.resume / "config.yaml"
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: not found; is {args.resume} a run directory of `uglspot train`?")
        if args.config is None:
            check_saved_config(config_path)
        overrides.append(f"out={args.resume.resolve()}")
    elif args.config is None:
        raise UserError("give a CONFIG.yaml (see configs/), or --resume RUN_DIR")
    else:
        config_path = args.config
        if args.out is not None:
            overrides.append(f"out={args.out.resolve()}")
    config = load_run_config(config_path, overrides)
    progress = train(config, resume=args.resume is not None, set_keys=set_keys(args.overrides))
    if os.environ.get("RANK", "0") != "0":
        return 0
    best = f", best validation {progress.best:.4f} after epoch {progress.best_epoch + 1}" if progress.best is not None else ""
    print(f"trained {progress.epoch} epochs ({progress.step} steps, {progress.bad_total} skipped){best}; "
          f"run in {config.out}")
    return 0
