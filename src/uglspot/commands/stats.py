"""``uglspot stats``: what a label file or a dataset folder holds
(``uglspot.app.stats``)."""

from __future__ import annotations

import argparse
import json

from uglspot.app.stats import label_stats
from uglspot.errors import BatchFailures

ORDER = 40

EXAMPLES = """\
examples:
  uglspot stats data/tennis/test.json
  uglspot stats data/finegym --plot finegym-stats.png
  uglspot stats data/finediving --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats", help="statistics of E2E-Spot label files",
        description="Count events per class and per video and measure the gaps between consecutive\n"
                    "events of a video (in frames, and in seconds where fps > 0), for one split file\n"
                    "or for every split of a dataset folder (the folder holding class.txt, or a folder\n"
                    "with one such folder inside, as `uglspot demo` writes). A folder's split files are\n"
                    "its JSON lists; JSON objects beside them (synth's dataset.json) are not labels.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labels", metavar="LABELS.json|LABELS_DIR", help="a {split}.json file or a dataset folder")
    parser.add_argument("--plot", metavar="OUT.png", help="also write histograms to this PNG file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stats = label_stats(args.labels, args.plot)
    if args.json:
        print(json.dumps(stats.to_json()))
    else:
        print(stats.text())
        if stats.plot is not None:
            print(f"wrote {stats.plot}")
        if stats.skipped:
            print("not label files (JSON objects, not lists of videos), skipped: "
                  + ", ".join(p.name for p in stats.skipped))
    if stats.failures:
        raise BatchFailures("label files", stats.failures)
    return 0
