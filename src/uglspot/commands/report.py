"""``uglspot report``: one self-contained HTML page about a run's predictions
(``uglspot.app.report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.report import write_report
from uglspot.commands import frame_tolerances, non_negative_int

ORDER = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of spotted events",
        description=(
            "Write one static HTML file (pictures embedded, no server, no network): per-class AP of "
            "each variant side by side, precision-recall curves, score timelines against ground truth, "
            "and an event gallery with each entity box drawn in proportion to its attention weight. "
            "RUN_OR_PREDICTIONS_DIR holds predictions/<variant>/**/events.json (as `uglspot demo` "
            "writes) or is itself a folder of events.json files. See docs/demo.md for the layout."))
    parser.add_argument("run", type=Path, metavar="RUN_OR_PREDICTIONS_DIR")
    parser.add_argument("--out", type=Path, default=None, help="output HTML file (default RUN/report.html)")
    parser.add_argument("--truth", type=Path, default=None, help="ground truth, E2E-Spot {split}.json")
    parser.add_argument("--classes", type=Path, default=None, help="class.txt (default: beside --truth)")
    parser.add_argument("--videos", type=Path, default=None, help="folder with the videos (for the gallery)")
    parser.add_argument("--tolerances", type=frame_tolerances, default=(1, 2), help="frame tolerances (default 1,2)")
    parser.add_argument("--gallery-per-class", type=non_negative_int, default=2,
                        help="top-scoring events per class and variant in the gallery (default 2)")
    parser.add_argument("--max-timelines", type=non_negative_int, default=6, help="videos with a timeline (default 6)")
    parser.add_argument("--title", default=None, help="report title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = write_report(args.run, args.out, args.truth, args.classes, args.videos, args.tolerances,
                       args.gallery_per_class, args.max_timelines, args.title)
    print(f"wrote {out}")
    return 0
