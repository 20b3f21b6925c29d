"""``uglspot convert``: between SoccerNet folders and E2E-Spot JSON (``uglspot.app.convert``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.app.convert import e2e_to_soccernet_dirs, predictions_to_soccernet_dirs, soccernet_to_e2e_file
from uglspot.commands import duration, frame_rate

ORDER = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert labels and predictions between SoccerNet folders and E2E-Spot JSON",
        description="Convert between SoccerNet game folders (<game>/Labels-v2.json, <game>/results_spotting.json) "
                    "and E2E-Spot JSON (one video '<game>/<half>' per half, frames at a chosen fps).")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    to_e2e = kinds.add_parser(
        "soccernet-to-e2e", help="SoccerNet Labels-v2.json folders -> one E2E-Spot labels JSON",
        description="Read every <game>/Labels-v2.json under SOCCERNET_DIR and write one E2E-Spot JSON with the "
                    "videos '<game>/1' and '<game>/2'. frame = int(position_ms / 1000 * fps); team and visibility "
                    "go into the comment ('home; visible'). num_frames comes from --reference, else from "
                    "--half-duration, else it is one past the last event of the half.")
    to_e2e.add_argument("soccernet_dir", metavar="SOCCERNET_DIR", type=Path)
    to_e2e.add_argument("output", metavar="OUT.json", type=Path)
    to_e2e.add_argument("--fps", type=frame_rate, help="frame rate of the E2E-Spot frames (e.g. 2, or 25/12 = 2.0833...)")
    to_e2e.add_argument("--reference", type=Path, metavar="REF.json",
                        help="E2E-Spot JSON of the same halves (e.g. of the extracted frames): each half found "
                             "there takes its fps, num_frames, width and height from it")
    to_e2e.add_argument("--half-duration", type=duration, metavar="SECONDS",
                        help="length of every half, for num_frames when there is no reference")
    to_e2e.add_argument("--class-list", type=Path, metavar="OUT_class.txt",
                        help="also write the sorted class names found, one per line (E2E-Spot's class.txt)")
    to_e2e.set_defaults(func=run_soccernet_to_e2e)

    to_sn = kinds.add_parser(
        "e2e-to-soccernet", help="E2E-Spot labels JSON -> SoccerNet <game>/Labels-v2.json folders",
        description="Write OUT_DIR/<game>/Labels-v2.json for the videos '<game>/1' and '<game>/2' of LABELS.json. "
                    "Positions are the first millisecond of each frame at the video's fps, so converting back "
                    "gives the same frames; a comment 'team; visibility' gives team and visibility.")
    to_sn.add_argument("labels", metavar="LABELS.json", type=Path)
    to_sn.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    to_sn.add_argument("--overwrite", action="store_true", help="replace Labels-v2.json files already in OUT_DIR")
    to_sn.set_defaults(func=run_e2e_to_soccernet)

    preds = kinds.add_parser(
        "predictions-to-soccernet", help="E2E-Spot predictions JSON -> SoccerNet <game>/results_spotting.json",
        description="Write OUT_DIR/<game>/results_spotting.json from E2E-Spot predictions "
                    "([{'video', 'events': [{'frame', 'label', 'score'}]}]); position = int(frame / fps * 1000) ms.")
    preds.add_argument("predictions", metavar="PRED.json", type=Path)
    preds.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    source = preds.add_mutually_exclusive_group(required=True)
    source.add_argument("--fps", type=frame_rate, help="frame rate of the predicted frames")
    source.add_argument("--reference", type=Path, metavar="GT.json",
                        help="E2E-Spot ground truth of the same videos; each video's fps comes from it")
    preds.add_argument("--overwrite", action="store_true",
                       help="replace results_spotting.json files already in OUT_DIR")
    preds.set_defaults(func=run_predictions_to_soccernet)


def run_soccernet_to_e2e(args: argparse.Namespace) -> int:
    done = soccernet_to_e2e_file(args.soccernet_dir, args.output, args.fps, args.reference, args.half_duration,
                                 args.class_list)
    print(f"wrote {done.items} halves, {done.events} events to {args.output}"
          + (f" ({done.past_end} events at or past num_frames: read them with "
             "`uglspot eval frames --allow-events-past-end` and "
             "`uglspot train --set data.allow_events_past_end=true`)" if done.past_end else ""),
          file=sys.stderr)
    if done.empty:
        print(f"left out {len(done.empty)} halves with no events and no length (first {done.empty[0]!r}); "
              "pass --half-duration SECONDS or --reference REF.json to write them", file=sys.stderr)
    return 0


def run_e2e_to_soccernet(args: argparse.Namespace) -> int:
    done = e2e_to_soccernet_dirs(args.labels, args.out_dir, args.overwrite)
    print(f"wrote {done.items} games to {args.out_dir}", file=sys.stderr)
    return 0


def run_predictions_to_soccernet(args: argparse.Namespace) -> int:
    done = predictions_to_soccernet_dirs(args.predictions, args.out_dir, args.fps, args.reference, args.overwrite)
    print(f"wrote predictions of {done.items} games to {args.out_dir}", file=sys.stderr)
    return 0
