"""``uglspot eval frames``: mAP at frame tolerances (E2E-Spot's metric) of
predictions in E2E-Spot form against an E2E-Spot ground-truth file
(``uglspot.app.evaluate``)."""

from __future__ import annotations

import argparse
import json

from uglspot.app.evaluate import evaluate_predictions
from uglspot.commands import frame_tolerances
from uglspot.errors import UserError

EXAMPLES = """\
examples:
  uglspot eval frames data/finediving/test.json pred-test.json
  uglspot eval frames test.json pred.json --nms 1 --tolerances 0,1,2,4 --json
  uglspot eval frames test.json spotted/           # the output folder of `uglspot spot`
"""


def register_eval(protocols: argparse._SubParsersAction) -> None:
    parser = protocols.add_parser(
        "frames", help="mAP at frame tolerances (FineDiving, FineGym, Tennis, FS)",
        description="Score predicted events with E2E-Spot's mAP at frame tolerances: per class,\n"
                    "predictions ranked by score each take the nearest untaken ground truth of\n"
                    "their video and are correct within the tolerance. Prints a table in percent;\n"
                    "--json prints one object with fractions in [0, 1].",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ground_truth", metavar="GT.json", help="ground truth, E2E-Spot {split}.json")
    parser.add_argument("predictions", metavar="PRED", nargs="+",
                        help='predictions: PRED.json files [{"video", "events": [{"frame", "label", "score"}]}], '
                             "events.json files of `uglspot spot`, or the output folder of spot or predict")
    parser.add_argument("--classes", metavar="class.txt", help="class list (default: class.txt beside GT.json)")
    parser.add_argument("--tolerances", default="0,1,2,4", metavar="T,T,...",
                        help="comma-separated tolerances in frames (default: 0,1,2,4)")
    parser.add_argument("--nms", metavar="W", help="first apply NMS with a window of ±W frames (E2E-Spot's rule)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--allow-events-past-end", action="store_true",
                        help="accept events at or after a video's num_frames (videos cut shorter than labels)")
    parser.set_defaults(func=run)


def parse_tolerances(text: str) -> tuple[int, ...]:
    """``--tolerances``, refused with exit 1 as the command's other input checks."""
    try:
        return frame_tolerances(text)
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"--tolerances {text!r}: {exc}") from None


def parse_window(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.strip().isdigit()):
        raise UserError(f"--nms {text!r}: the window must be a non-negative whole number of frames, e.g. 1")
    return int(text)


def run(args: argparse.Namespace) -> int:
    tolerances, window = parse_tolerances(args.tolerances), parse_window(args.nms)
    scored = evaluate_predictions(args.ground_truth, args.predictions, args.classes, tolerances, window,
                                  args.allow_events_past_end)
    if args.json:
        print(json.dumps(scored.result.to_json()))
        return 0
    nms = f", after NMS ±{window}" if window is not None else ""
    print(f"{args.ground_truth}: {scored.videos} videos, {scored.events} events; "
          f"{scored.predictions} predictions{nms}. AP in percent:")
    print(scored.table())
    return 0
