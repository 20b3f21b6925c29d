"""``uglspot frames``: decode videos once into a frame cache for training
(``uglspot.app.frames``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.app.frames import cache_frames
from uglspot.commands import frame_rate, int_at_least, parse_size, positive_int
from uglspot.errors import BatchFailures
from uglspot.limits import MAX_SIDE

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "frames", help="decode videos once into a compact frame cache",
        description="Decode each video once at a target fps and size into DIR/<video>/ "
                    "(JPEGs in one file with an offset index, or raw uint8), which training "
                    "reads clip by clip without decoding. Videos already done with the same "
                    "settings are skipped; a bad video is reported at the end.")
    parser.add_argument("videos", nargs="+", metavar="VIDEO",
                        help="video files, folders of videos, or .txt lists of paths")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="cache directory")
    parser.add_argument("--fps", type=frame_rate, default=None, help="target frame rate (default: native)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--height", type=int_at_least(1, MAX_SIDE), default=None, help="target height, keeping the aspect ratio")
    group.add_argument("--size", type=parse_size, default=None, metavar="WxH", help="exact target size")
    parser.add_argument("--format", choices=("jpeg", "raw"), default="jpeg",
                        help="jpeg: ~10x smaller (default); raw: no decoding cost, 3*W*H bytes a frame")
    parser.add_argument("--quality", type=int_at_least(1, 100), default=90, help="JPEG quality 1-100 (default 90)")
    parser.add_argument("--workers", type=positive_int, default=1, help="videos decoded in parallel (processes)")
    parser.add_argument("--force", action="store_true", help="redo videos that are already done")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcome = cache_frames(args.videos, args.out, args.fps, args.size or args.height, args.format, args.quality,
                           args.workers, args.force)
    if outcome.skipped:
        print(f"{outcome.skipped} video(s) already done in {args.out}, skipped", file=sys.stderr)
    if outcome.done:
        frames = outcome.frames
        print(f"cached {len(outcome.done)} video(s), {frames} frames, "
              f"{outcome.bytes / max(frames, 1) / 1024:.1f} KiB/frame in {args.out}")
    if outcome.failures:
        raise BatchFailures("video(s)", outcome.failures)
    return 0
