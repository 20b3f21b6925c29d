"""``uglspot eval frames``: mAP at frame tolerances (E2E-Spot's metric) of
predictions in E2E-Spot form against an E2E-Spot ground-truth file."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from uglspot.errors import UserError

if TYPE_CHECKING:
    from uglspot.data.labels import Video, VideoPredictions
    from uglspot.metrics.spotting import FrameMapResult

EXAMPLES = """\
examples:
  uglspot eval frames data/finediving/test.json pred-test.json
  uglspot eval frames test.json pred.json --nms 1 --tolerances 0,1,2,4 --json
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
    parser.add_argument("predictions", metavar="PRED.json",
                        help='predictions: [{"video", "events": [{"frame", "label", "score"}]}]')
    parser.add_argument("--classes", metavar="class.txt", help="class list (default: class.txt beside GT.json)")
    parser.add_argument("--tolerances", default="0,1,2,4", metavar="T,T,...",
                        help="comma-separated tolerances in frames (default: 0,1,2,4)")
    parser.add_argument("--nms", metavar="W", help="first apply NMS with a window of ±W frames (E2E-Spot's rule)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--allow-events-past-end", action="store_true",
                        help="accept events at or after a video's num_frames (videos cut shorter than labels)")
    parser.set_defaults(func=run)


def parse_tolerances(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    values = []
    for part in parts:
        if not (part.isascii() and part.isdigit()):
            raise UserError(f"--tolerances {text!r}: {part!r} is not a non-negative whole number of frames; "
                            "write e.g. 0,1,2,4")
        values.append(int(part))
    if len(set(values)) != len(values):
        raise UserError(f"--tolerances {text!r}: a value is repeated; list each tolerance once")
    return tuple(values)


def parse_window(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.strip().isdigit()):
        raise UserError(f"--nms {text!r}: the window must be a non-negative whole number of frames, e.g. 1")
    return int(text)


def check_prediction_frames(preds: Sequence[VideoPredictions], truth: Sequence[Video], source: str,
                            allow_past_end: bool) -> None:
    """Every predicted frame lies in its video and every score is finite."""
    num_frames = {v.video: v.num_frames for v in truth}
    for pred in preds:
        end = num_frames[pred.video]
        for index, event in enumerate(pred.events):
            where = f"{source}: video {pred.video!r}, event #{index}"
            if event.frame < 0 or (event.frame >= end and not allow_past_end):
                raise UserError(f"{where}: frame {event.frame} is outside [0, {end}); predictions must lie "
                                "inside the video (or pass --allow-events-past-end)")
            if not math.isfinite(event.score):
                raise UserError(f"{where}: score {event.score} is not a finite number")


def format_table(result: FrameMapResult, classes: Sequence[str]) -> str:
    width = max([len("mAP")] + [len(c) for c in classes])
    header = f"{'class':<{width}}" + "".join(f"{'δ=' + str(t):>9}" for t in result.tolerances)
    lines = [header, "-" * len(header)]
    for name in classes:
        cells = []
        for tol in result.tolerances:
            ap = result.per_class[tol][name]
            cells.append(f"{'-' if ap is None else f'{100 * ap:.2f}':>9}")
        lines.append(f"{name:<{width}}" + "".join(cells))
    lines.append("-" * len(header))
    lines.append(f"{'mAP':<{width}}" + "".join(f"{100 * result.map[t]:>9.2f}" for t in result.tolerances))
    selection = result.selection_map
    if selection is not None:
        lines.append(f"mean mAP over δ in {{1, 2, 4}} (model selection): {100 * selection:.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from uglspot.data.labels import (check_predictions_match, find_class_list, read_class_list,
                                     read_e2e_labels, read_predictions)
    from uglspot.metrics.spotting import frame_map
    from uglspot.post.nms import nms_predictions

    tolerances = parse_tolerances(args.tolerances)
    window = parse_window(args.nms)
    class_path = Path(args.classes) if args.classes else find_class_list(args.ground_truth)
    classes = read_class_list(class_path)
    truth = read_e2e_labels(args.ground_truth, classes, allow_past_end=args.allow_events_past_end,
                            past_end_option="--allow-events-past-end")
    preds = read_predictions(args.predictions)
    check_predictions_match(preds, truth, classes, args.predictions)
    check_prediction_frames(preds, truth, args.predictions, args.allow_events_past_end)
    if not any(v.events for v in truth):
        raise UserError(f"{args.ground_truth}: no ground-truth events, so mAP is undefined; "
                        "check that this is the right split")
    if window is not None:
        preds = nms_predictions(preds, window)
    result = frame_map(truth, preds, classes, tolerances)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        num_events = sum(len(v.events) for v in truth)
        num_preds = sum(len(p.events) for p in preds)
        nms = f", after NMS ±{window}" if window is not None else ""
        print(f"{args.ground_truth}: {len(truth)} videos, {num_events} events; "
              f"{num_preds} predictions{nms}. AP in percent:")
        print(format_table(result, classes))
    return 0
