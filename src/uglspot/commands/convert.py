"""``uglspot convert``: between SoccerNet folders and E2E-Spot JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.commands import positive_float
from uglspot.errors import UserError

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
    to_e2e.add_argument("--fps", type=float, help="frame rate of the E2E-Spot frames (e.g. 2, or 25/12 = 2.0833...)")
    to_e2e.add_argument("--reference", type=Path, metavar="REF.json",
                        help="E2E-Spot JSON of the same halves (e.g. of the extracted frames): each half found "
                             "there takes its fps, num_frames, width and height from it")
    to_e2e.add_argument("--half-duration", type=positive_float, metavar="SECONDS",
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
    source.add_argument("--fps", type=float, help="frame rate of the predicted frames")
    source.add_argument("--reference", type=Path, metavar="GT.json",
                        help="E2E-Spot ground truth of the same videos; each video's fps comes from it")
    preds.add_argument("--overwrite", action="store_true",
                       help="replace results_spotting.json files already in OUT_DIR")
    preds.set_defaults(func=run_predictions_to_soccernet)


def _reference(path: Path | None) -> dict:
    from uglspot.data.labels import read_e2e_labels

    if path is None:
        return {}
    return {video.video: video for video in read_e2e_labels(path, allow_past_end=True)}


def run_soccernet_to_e2e(args: argparse.Namespace) -> int:
    from uglspot.data.labels import write_e2e_labels
    from uglspot.data.soccernet import LABELS_FILE, find_games, read_labels_dir, soccernet_to_e2e
    from uglspot.io import refuse_overwrite, write_text_atomic

    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: the frame rate must be positive")
    if args.half_duration is not None and args.half_duration <= 0:
        raise UserError(f"--half-duration {args.half_duration}: must be positive seconds")
    inputs = [args.soccernet_dir / game / LABELS_FILE for game in find_games(args.soccernet_dir, LABELS_FILE)]
    if not inputs:
        raise UserError(f"{args.soccernet_dir}: no {LABELS_FILE} found at any depth")
    inputs += [args.reference] if args.reference is not None else []
    for output in [args.output] + ([args.class_list] if args.class_list is not None else []):
        refuse_overwrite(output, *inputs)
    if args.class_list is not None and args.class_list.resolve() == args.output.resolve():
        raise UserError(f"{args.class_list}: the class list and the labels would be the same file")
    reference = _reference(args.reference)
    if args.fps is None and not reference:
        raise UserError("pass --fps (or --reference with each half's fps)")
    videos = soccernet_to_e2e(read_labels_dir(args.soccernet_dir), args.fps, reference, args.half_duration)
    write_e2e_labels(videos, args.output)
    if args.class_list is not None:
        classes = sorted({event.label for video in videos for event in video.events})
        write_text_atomic(args.class_list, "".join(f"{name}\n" for name in classes))
    past_end = sum(1 for v in videos for e in v.events if e.frame >= v.num_frames)
    print(f"wrote {len(videos)} halves, {sum(len(v.events) for v in videos)} events to {args.output}"
          + (f" ({past_end} events at or past num_frames: read them with "
             "`uglspot eval frames --allow-events-past-end` and "
             "`uglspot train --set data.allow_events_past_end=true`)" if past_end else ""),
          file=sys.stderr)
    return 0


def _check_targets(targets: list[Path], inputs: list[Path], overwrite: bool, what: str) -> None:
    from uglspot.io import refuse_overwrite

    for target in targets:
        refuse_overwrite(target, *inputs)
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]}: already exists ({len(existing)} {what} file(s) would be replaced); "
                        "pass --overwrite or choose an empty OUT_DIR")


def run_e2e_to_soccernet(args: argparse.Namespace) -> int:
    from uglspot.data.labels import read_e2e_labels
    from uglspot.data.soccernet import LABELS_FILE, e2e_to_soccernet, game_dir, write_labels

    games = e2e_to_soccernet(read_e2e_labels(args.labels, allow_past_end=True), str(args.labels))
    targets = [game_dir(args.out_dir, g.game, str(args.labels)) / LABELS_FILE for g in games]
    _check_targets(targets, [args.labels], args.overwrite, LABELS_FILE)
    for game in games:
        write_labels(args.out_dir, game)
    print(f"wrote {len(games)} games to {args.out_dir}", file=sys.stderr)
    return 0


def run_predictions_to_soccernet(args: argparse.Namespace) -> int:
    from uglspot.data.labels import read_predictions
    from uglspot.data.soccernet import PREDICTIONS_FILE, game_dir, predictions_to_soccernet, write_game_predictions

    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: the frame rate must be positive")
    fps = args.fps if args.fps is not None else {v: video.fps for v, video in _reference(args.reference).items()}
    games = predictions_to_soccernet(read_predictions(args.predictions), fps, str(args.predictions))
    targets = [game_dir(args.out_dir, g.game, str(args.predictions)) / PREDICTIONS_FILE for g in games]
    inputs = [args.predictions] + ([args.reference] if args.reference is not None else [])
    _check_targets(targets, inputs, args.overwrite, PREDICTIONS_FILE)
    for game in games:
        write_game_predictions(args.out_dir, game)
    print(f"wrote predictions of {len(games)} games to {args.out_dir}", file=sys.stderr)
    return 0
