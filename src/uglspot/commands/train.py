"""``uglspot train``: train a spotter from a YAML configuration (``uglspot.app.train``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.train import train_from_config

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
    parser.add_argument("--init", type=Path, metavar="MODEL_DIR",
                        help="start from the weights of this model folder or run directory (e.g. one that "
                             "import-ugl or import-e2e-spot wrote; model.name must be its variant)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcome = train_from_config(args.config, args.overrides, args.resume, args.out, args.init)
    if not outcome.main_process:
        return 0
    progress = outcome.progress
    best = f", best validation {progress.best:.4f} after epoch {progress.best_epoch + 1}" if progress.best is not None else ""
    print(f"trained {progress.epoch} epochs ({progress.step} steps, {progress.bad_total} skipped){best}; "
          f"run in {outcome.run}")
    return 0
