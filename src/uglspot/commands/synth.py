"""``uglspot synth``: render a synthetic football dataset (videos, labels, entity stores)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from uglspot.errors import UserError

ORDER = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="render a synthetic football dataset with exact labels and detector entities",
        description=(
            "Render seeded synthetic football matches: H.264 videos, E2E-Spot labels (class.txt, "
            "train/val/test.json), SoccerNet Labels-v2.json per match, and a simulated detector's "
            "entity store per match. The same seed gives the same dataset. See docs/demo.md."))
    parser.add_argument("--out", required=True, type=Path, help="new or empty output directory")
    parser.add_argument("--matches", type=int, default=10,
                        help="matches in all, split train/val/test as 70/10/20%% (at least one each; default 10)")
    parser.add_argument("--minutes", type=float, default=4.0, help="length of each match video (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--width", type=int, default=224, help="frame width, even (default 224)")
    parser.add_argument("--height", type=int, default=128, help="frame height, even (default 128)")
    parser.add_argument("--fps", type=float, default=8.0, help="frame rate (default 8)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="matches rendered in parallel (default: min(2, CPUs))")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a renderer setting, e.g. --set detector.recall.ball=0.5 "
                             "or --set red_card=0.3 (repeatable; keys in docs/demo.md)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uglspot.config import apply_overrides, from_dict
    from uglspot.synth import SynthConfig, generate_dataset, split_counts

    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: already exists and is not an empty directory; choose a new --out")
    try:
        counts = split_counts(args.matches)
    except ValueError as exc:
        raise UserError(f"--matches: {exc}") from None
    data = apply_overrides({"width": args.width, "height": args.height, "fps": args.fps,
                            "minutes": args.minutes}, args.overrides)
    cfg = from_dict(SynthConfig, data, "synth settings")
    splits = generate_dataset(out, cfg, counts, args.seed, workers=max(1, args.workers))
    for split, videos in splits.items():
        events = sum(len(v.events) for v in videos)
        print(f"{split}: {len(videos)} matches, {sum(v.num_frames for v in videos)} frames, {events} events")
    print(f"wrote {out}")
    return 0
