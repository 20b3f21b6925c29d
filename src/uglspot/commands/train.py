"""``uglspot train``: train a spotter from a YAML configuration, or from a
labels folder and a videos folder (``uglspot.app.train``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.app.train import plan_own_videos, train_from_config, train_own_videos
from uglspot.commands import positive_int
from uglspot.errors import UserError

ORDER = 30

EXAMPLES = """\
examples:
  uglspot train --labels my-labels --videos my-videos --out runs/mine       # your own videos, no config
  uglspot train --labels my-labels --videos my-videos --entities stores --out runs/mine-ugl
  uglspot train configs/finediving.yaml --set train.epochs=10 --out runs/x  # a paper's recipe
  uglspot train --resume runs/x                                             # after a crash or Ctrl-C
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a spotting model on labelled videos",
        description="Train a spotter from a YAML configuration (see configs/), or from a folder of E2E-Spot "
                    "labels (class.txt, train.json, val.json) and a folder of videos with defaults sized to the "
                    "data and this machine (--labels, --videos). Writes the resolved config, metrics.csv, "
                    "steps.csv and checkpoints/{last,best} into the run directory. Run several processes with "
                    "torchrun, e.g. `torchrun --nproc_per_node 4 -m uglspot train configs/finediving.yaml`.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path,
                        help="training configuration (YAML); optional with --resume (the run's config.yaml)")
    parser.add_argument("--labels", type=Path, metavar="DIR", help="your labels: class.txt, train.json, val.json")
    parser.add_argument("--videos", type=Path, metavar="DIR", help="your videos, <video id>.mp4 (with --labels)")
    parser.add_argument("--entities", type=Path, metavar="DIR",
                        help="entity stores of `uglspot detect` (with --labels): trains the UGL model ugl_rny002")
    parser.add_argument("--model", metavar="NAME",
                        help="model variant (with --labels; default e2e_rny002, or ugl_rny002 with --entities)")
    parser.add_argument("--epochs", type=positive_int, help="epochs (with --labels; default 20)")
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
    own = [f"--{k}" for k in ("labels", "videos", "entities", "model", "epochs") if getattr(args, k) is not None]
    if own:
        if args.config is not None or args.resume is not None:
            raise UserError(f"{own[0]} trains from folders without a config: drop "
                            f"{'CONFIG' if args.config is not None else '--resume'} (a run resumes from its own "
                            "config.yaml: `uglspot train --resume RUN_DIR`)")
        missing = [k for k in ("--labels", "--videos", "--out") if k not in own + (["--out"] if args.out else [])]
        if missing:
            raise UserError(f"training from folders needs {', '.join(missing)}: "
                            "uglspot train --labels DIR --videos DIR --out RUN_DIR")
        init = [f"model.init={args.init.resolve()}"] if args.init is not None else []
        plan = plan_own_videos(args.labels, args.videos, args.out, entities=args.entities, model=args.model,
                               epochs=args.epochs, overrides=[*init, *args.overrides])
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
        outcome = train_own_videos(plan)
    else:
        outcome = train_from_config(args.config, args.overrides, args.resume, args.out, args.init)
    if not outcome.main_process:
        return 0
    progress = outcome.progress
    best = f", best validation {progress.best:.4f} after epoch {progress.best_epoch + 1}" if progress.best is not None else ""
    print(f"trained {progress.epoch} epochs ({progress.step} steps, {progress.bad_total} skipped){best}; "
          f"run in {outcome.run}")
    return 0
