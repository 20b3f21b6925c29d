"""``uglspot demo``: the whole system on a synthetic benchmark, offline, on a CPU
(``uglspot.app.demo``); prints the table it measured."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from uglspot.app.demo import PROFILES, demo_profile, run_demo
from uglspot.commands import non_negative_int, positive_int
from uglspot.errors import UserError

ORDER = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="render a synthetic benchmark, train global-only and UGL, compare them, write a report",
        description=(
            "Run the whole system offline, on a CPU or a GPU: render synthetic football matches (uglspot synth), "
            "train the UGL variant (ugl_rny002) and take the global-only variant (e2e_rny002) from its "
            "isolated backbone and global head (the same weights a training of its own gives), spot the test "
            "matches with both, print AP per class at δ = 1 and 2 frames, and write DIR/report.html. About "
            "16-17 CPU-minutes: 9-10 minutes on 2 cores (--profile long: about 60 CPU-minutes, 33 minutes "
            "on 2 cores; --quick: about 1 minute). See docs/demo.md."))
    parser.add_argument("--out", type=Path, default=Path("demo-run"), help="new output directory (default demo-run)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="default (9-10 minutes on 2 cores), long (3.3 times the matches, 5.3 times the "
                             "training; about 33 minutes on 2 cores) or quick")
    parser.add_argument("--quick", action="store_true", help="the quick profile: a smaller run for CI (about 1 minute)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="dataset and training seed (default 0)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="auto",
                        help="where to train and spot: auto (a GPU when CUDA is available, else the CPU), cpu, "
                             "cuda or cuda:N (default auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.quick and args.profile not in (None, "quick"):
        raise UserError(f"--quick and --profile {args.profile} disagree; pass one of them")
    profile = demo_profile("quick" if args.quick else args.profile or "default", args.seed, args.device)
    root: Path = args.out
    outcome = run_demo(root, profile, threads=args.threads or os.cpu_count() or 1)
    print()
    print(f"Test split: {outcome.test_videos} matches, {sum(outcome.counts.values())} events.")
    print("\n".join(outcome.notes))
    print("AP (%) per class, E2E-Spot frame mAP at δ frames (Δ: UGL minus global-only):")
    print(outcome.table)
    print(f"\n{outcome.finding}")
    timings = outcome.seconds
    print(f"\nreport: {root / 'report.html'}   took {timings['total'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in timings.items() if k != 'total')})")
    return 0
