"""``uglspot report``: one self-contained HTML page about a run's predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.commands import non_negative_int
from uglspot.errors import UserError

ORDER = 60


def _tolerances(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame counts, e.g. 1,2; got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative frame counts, got {text!r}")
    return values


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
    parser.add_argument("--tolerances", type=_tolerances, default=(1, 2), help="frame tolerances (default 1,2)")
    parser.add_argument("--gallery-per-class", type=non_negative_int, default=2,
                        help="top-scoring events per class and variant in the gallery (default 2)")
    parser.add_argument("--max-timelines", type=non_negative_int, default=6, help="videos with a timeline (default 6)")
    parser.add_argument("--title", default=None, help="report title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uglspot.io import refuse_overwrite, write_text_atomic
    from uglspot.report import build_report, load_inputs

    out = args.out or args.run / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: the report is an HTML file; give a name ending in .html")
    inputs = load_inputs(args.run, truth=args.truth, classes=args.classes, videos=args.videos, title=args.title)
    refuse_overwrite(out, *(p for p in (args.truth, args.classes) if p is not None))
    from uglspot.progress import progress_bar

    with progress_bar("report", 4 if inputs.truth is not None else 2, "part") as bar:
        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            bar.update(1)

        document, _ = build_report(inputs, tolerances=args.tolerances, gallery_per_class=args.gallery_per_class,
                                   max_timelines=args.max_timelines, progress=progress)
    write_text_atomic(out, document)
    print(f"wrote {out}")
    return 0
