"""``uglspot detect``: find scene entities in videos with an open-vocabulary
detector and write one entity store per video (``uglspot.app.detect``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.app.detect import DEFAULT_MODELS, FEATURE_KINDS, SOCCER_PROMPT, detect_videos, detector_config
from uglspot.commands import (fraction, frame_rate_or_native, non_negative_int, parse_image_size, parse_size,
                              positive_int)
from uglspot.errors import BatchFailures

ORDER = 35


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect", help="detect scene entities in videos into entity stores",
        description="Run an open-vocabulary detector on every frame of each video at --fps and write "
                    "DIR/<video>.entities.safetensors. Videos already done with the same settings are "
                    "skipped. Under `torchrun --nproc-per-node G -m uglspot detect ...` the videos are "
                    "split across ranks, one GPU each. With --detector glip-import the inputs are "
                    "released UGL entity .pt files, converted without running a model.")
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_LIST",
                        help="video files, folders, or .txt lists of paths (.pt files for glip-import)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory of stores")
    parser.add_argument("--fps", type=frame_rate_or_native, required=True,
                        help="frame rate the stores index: the rate training decodes at (data.fps, e.g. 2 or "
                             "25), or `native` for each file's own rate (configs with data.fps: null)")
    parser.add_argument("--detector", choices=tuple(DEFAULT_MODELS), default=None,
                        help="backend (default grounding-dino)")
    parser.add_argument("--model", default=None, metavar="ID_OR_PATH",
                        help="hub id or local model directory; defaults: "
                             + ", ".join(f"{k}: {v}" for k, v in DEFAULT_MODELS.items() if k != "glip-import"))
    parser.add_argument("--config", type=Path, default=None, metavar="YAML",
                        help="detector settings (its `detector:` section, or the whole file); flags override it")
    parser.add_argument("--prompt", default=None, metavar="NAMES",
                        help=f"comma-separated entity names (default: {','.join(SOCCER_PROMPT)})")
    parser.add_argument("--box-threshold", type=fraction, default=None, help="minimum box score (default 0.3)")
    parser.add_argument("--text-threshold", type=fraction, default=None,
                        help="grounding-dino: minimum token score for a class (default 0.25)")
    parser.add_argument("--max-per-frame", type=positive_int, default=None, help="entities kept per frame (default 50)")
    parser.add_argument("--features", choices=FEATURE_KINDS, default=None,
                        help="what each box's feature is: roi (default, the paper's: RoIAlign of the box on the "
                             "detector's visual backbone map) or query (the model's own per-box embedding); "
                             "recorded in the store, and a model trained on one kind refuses the other")
    parser.add_argument("--image-size", type=parse_image_size, default=None, metavar="SHORTxLONG",
                        help="grounding-dino input size (default the model's, 800x1333)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="frames per detector batch")
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK if available, else cpu), cpu, cuda:N")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default=None,
                        help="compute precision (auto: bf16 on GPU, fp32 on CPU)")
    parser.add_argument("--force", action="store_true", help="redo videos that are already done")
    parser.add_argument("--class-base", type=non_negative_int, default=1,
                        help="glip-import: the class number of the first prompt name in the files (default 1)")
    parser.add_argument("--glip-frame-size", type=parse_size, default=None, metavar="WxH",
                        help="glip-import: frame size of pixel boxes (boxes in [0,1] need none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prompt = None if args.prompt is None else [p.strip() for p in args.prompt.split(",") if p.strip()]
    config = detector_config(args.config, name=args.detector, model=args.model, box_threshold=args.box_threshold,
                             text_threshold=args.text_threshold, max_per_frame=args.max_per_frame,
                             image_size=list(args.image_size) if args.image_size else None, dtype=args.dtype,
                             features=args.features, prompt=prompt)
    outcome = detect_videos(args.videos, args.out, args.fps, config, args.device, args.batch_size, args.force,
                            args.class_base, args.glip_frame_size)
    who = outcome.rank
    if outcome.written:
        print(f"{who}{outcome.written} store(s) written to {args.out}", file=sys.stderr)
    if outcome.skipped:
        print(f"{who}{outcome.skipped} video(s) already done in {args.out}, skipped", file=sys.stderr)
    if outcome.failures:
        raise BatchFailures(f"video(s) on {who.rstrip(': ')}" if who else "video(s)", outcome.failures)
    return 0
