"""``uglspot synth``: render a synthetic football dataset (videos, labels,
entity stores; ``uglspot.app.synth``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from uglspot.app.synth import render_dataset
from uglspot.commands import frame_rate, non_negative_int, positive_float, positive_int
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
    parser.add_argument("--matches", type=positive_int, default=10,
                        help="matches in all, split train/val/test as 70/10/20%% (at least one each; default 10)")
    parser.add_argument("--splits", default=None, metavar="TRAIN,VAL,TEST",
                        help="matches per split, e.g. 12,1,10 (instead of --matches)")
    parser.add_argument("--minutes", type=positive_float, default=4.0, help="length of each match video (default 4)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--width", type=positive_int, default=224, help="frame width, even (default 224)")
    parser.add_argument("--height", type=positive_int, default=128, help="frame height, even (default 128)")
    parser.add_argument("--fps", type=frame_rate, default=8.0, help="frame rate (default 8)")
    parser.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                        help="matches rendered in parallel (default: min(2, CPUs))")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a renderer setting, e.g. --set detector.recall.ball=0.5 "
                             "or --set red_card=0.3 (repeatable; keys in docs/demo.md)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    matches = parse_splits(args.splits) if args.splits is not None else args.matches
    splits = render_dataset(args.out, matches, args.minutes, args.seed, args.width, args.height, args.fps,
                            args.workers, args.overrides)
    for split, videos in splits.items():
        events = sum(len(v.events) for v in videos)
        print(f"{split}: {len(videos)} matches, {sum(v.num_frames for v in videos)} frames, {events} events")
    print(f"wrote {args.out}")
    return 0


def parse_splits(text: str) -> dict[str, int]:
    """``"12,1,10"`` → train/val/test match counts (each >= 0, train and test >= 1)."""
    parts = text.split(",")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 0 or values[0] < 1 or values[2] < 1:
        raise UserError(f"--splits {text!r}: give three whole numbers TRAIN,VAL,TEST, e.g. 12,1,10 "
                        "(train and test at least 1)")
    return dict(zip(("train", "val", "test"), values))
