"""``uglspot clips``: a clip per spotted event, and a highlight reel
(``uglspot.app.clips``)."""

from __future__ import annotations

import argparse
import sys

from uglspot.app.clips import MODES, cut_highlights
from uglspot.commands import fraction, non_negative_seconds

ORDER = 42

EXAMPLES = """\
examples:
  uglspot clips spotted/ --video match.mp4 --out highlights/
  uglspot clips spotted/match/events.json --video match.mp4 --classes Goal,"Red card" --reel --out goals/
  uglspot clips spotted/ --video match.mp4 --before 5 --after 10 --min-score 0.5 --mode copy --out fast/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "clips", help="cut a clip around each spotted event, and a highlight reel",
        description="Cut one clip per event that `uglspot spot` found (events closer than --before plus\n"
                    "--after seconds share a clip) from the video, into a new folder: clip_NNN_<class>_<mm-ss>.mp4\n"
                    "and clips.json (each clip's start, end, events and how it was made). Where the video has a\n"
                    "keyframe at a clip's start and end the clip is the source's packets, copied; elsewhere it is\n"
                    "decoded and encoded again (H.264). Video only: audio is not carried.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", metavar="SPOT_OUT|events.json",
                        help="the output folder of `uglspot spot` (the video's events are found by its name) or "
                             "one events.json")
    parser.add_argument("--video", required=True, help="the video file the events were spotted on")
    parser.add_argument("--out", required=True, help="new output folder (never overwritten)")
    parser.add_argument("--classes", type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                        metavar="A,B", help="only events of these classes (default: all)")
    parser.add_argument("--min-score", type=fraction, metavar="S",
                        help="only events scoring at least S (default: every event in the file, which spot has "
                             "already thresholded)")
    parser.add_argument("--before", type=non_negative_seconds, default=3.0, metavar="S",
                        help="seconds of video before each event (default 3)")
    parser.add_argument("--after", type=non_negative_seconds, default=5.0, metavar="S",
                        help="seconds of video after each event (default 5)")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="auto: copy the packets where keyframes allow, else encode (default); copy: widen "
                             "each clip to the keyframes around it and copy every clip; encode: encode every clip")
    parser.add_argument("--reel", action="store_true", help="also join all clips into reel.mp4 (encoded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcome = cut_highlights(args.events, args.video, args.out, classes=args.classes, min_score=args.min_score,
                             before=args.before, after=args.after, mode=args.mode, reel=args.reel,
                             on_clip=lambda clip: print(f"{clip.file}  {clip.start:.1f}-{clip.end:.1f} s  "
                                                        f"{', '.join(e.label for e in clip.events)}  ({clip.mode})"))
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    left = f"; {outcome.left_out} event(s) of other classes or below --min-score left out" if outcome.left_out else ""
    copied = sum(c.mode == "copy" for c in outcome.clips)
    print(f"{len(outcome.clips)} clip(s) ({copied} copied, {len(outcome.clips) - copied} encoded) from "
          f"{outcome.events_file}{left}: {outcome.index_file}")
    if outcome.reel is not None:
        print(f"reel: {outcome.reel}")
    return 0
