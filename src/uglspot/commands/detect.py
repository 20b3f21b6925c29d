"""``uglspot detect``: find scene entities in videos with an open-vocabulary
detector and write one entity store per video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from uglspot.commands import fraction, non_negative_int, parse_size, positive_int

ORDER = 35


def _image_size(text: str) -> tuple[int, int]:
    try:
        short, long = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SHORTxLONG such as 448x800, got {text!r}") from None
    return short, long


def _fps(text: str) -> float | None:
    if text.lower() == "native":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame rate such as 2 or 25, or `native`, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"the frame rate must be positive, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from uglspot.entities.detectors import DEFAULT_MODELS, FEATURE_KINDS, SOCCER_PROMPT

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
    parser.add_argument("--fps", type=_fps, required=True,
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
    parser.add_argument("--image-size", type=_image_size, default=None, metavar="SHORTxLONG",
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


def build_config(args: argparse.Namespace):
    from uglspot.config import from_dict
    from uglspot.entities.detect import DetectorConfig
    from uglspot.errors import UserError

    data: dict = {}
    if args.config is not None:
        import yaml

        if not args.config.is_file():
            raise UserError(f"{args.config}: config file not found")
        loaded = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        data = dict(loaded.get("detector", loaded)) if isinstance(loaded, dict) else loaded
    overrides = {"name": args.detector, "model": args.model, "box_threshold": args.box_threshold,
                 "text_threshold": args.text_threshold, "max_per_frame": args.max_per_frame,
                 "image_size": list(args.image_size) if args.image_size else None, "dtype": args.dtype,
                 "features": args.features}
    if args.prompt is not None:
        overrides["prompt"] = [p.strip() for p in args.prompt.split(",") if p.strip()]
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(DetectorConfig, data, str(args.config or "detector settings"))


def run(args: argparse.Namespace) -> int:
    from uglspot.engine.runtime import Distributed, main_rank_lock

    dist = Distributed.from_env()
    # one writer per store folder; under torchrun rank 0 holds it for the job, until its own share is done
    with main_rank_lock(dist, args.out, "detect"):
        return detect_videos(args, dist)


def detect_videos(args: argparse.Namespace, dist: Any) -> int:
    """Detect this rank's share of the videos (``dist``: its Distributed) into stores."""
    from uglspot.data.inputs import video_entries
    from uglspot.engine.runtime import pick_device, shard
    from uglspot.errors import BatchFailures, UserError

    config = build_config(args)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    rank, world = dist.rank, dist.world_size
    mine = shard(video_entries(args.videos), rank, world)
    who = f"rank {rank}/{world}: " if world > 1 else ""
    if config.name == "glip-import":
        failures, skipped = _import_glip(args, config, mine, who)
    else:
        from uglspot.entities.detect import detect_to_stores

        outcome = detect_to_stores(config, mine, args.out, args.fps, pick_device(args.device, dist), args.batch_size,
                                   args.force,
                                   label=who, position=2 * rank)
        failures, skipped = outcome.failures, len(outcome.skipped)
        if outcome.done:
            print(f"{who}{len(outcome.done)} store(s) written to {args.out}", file=sys.stderr)
    if skipped:
        print(f"{who}{skipped} video(s) already done in {args.out}, skipped", file=sys.stderr)
    if failures:
        raise BatchFailures(f"video(s) on {who.rstrip(': ')}" if who else "video(s)",
                            [(name, reason.removeprefix(f"{name}: ")) for name, reason in failures])
    return 0


def _import_glip(args: argparse.Namespace, config, items: list, who: str) -> tuple[list[tuple[str, str]], int]:
    """Released UGL entity files into stores (no model runs); (failures, skipped)."""
    from uglspot.entities.detect import is_done, store_key
    from uglspot.entities.store import import_glip, store_path
    from uglspot.errors import UserError
    from uglspot.progress import progress_bar

    failures: list[tuple[str, str]] = []
    todo = []
    for path, video_id in items:
        if not path.is_file():
            failures.append((str(path), "no such file" if not path.exists() else "not a file"))
            continue
        key = store_key(config, video_id, path, args.fps)
        if args.force or not is_done(store_path(args.out, video_id), key):
            todo.append((path, video_id, key))
    with progress_bar(f"{who}detect glip-import", len(todo), "file", disable=not todo) as bar:
        for path, video_id, key in todo:
            try:
                import_glip(path, key, class_base=args.class_base, box_scale=args.glip_frame_size,
                            out_path=store_path(args.out, video_id))
            except UserError as exc:
                failures.append((str(path), str(exc)))
            bar.update(1)
    return failures, len(items) - len(todo) - len(failures)
