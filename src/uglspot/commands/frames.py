"""``uglspot frames``: decode videos once into a frame cache for training."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.commands import int_at_least, parse_size, positive_float, positive_int

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
    parser.add_argument("--fps", type=positive_float, default=None, help="target frame rate (default: native)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--height", type=positive_int, default=None, help="target height, keeping the aspect ratio")
    group.add_argument("--size", type=parse_size, default=None, metavar="WxH", help="exact target size")
    parser.add_argument("--format", choices=("jpeg", "raw"), default="jpeg",
                        help="jpeg: ~10x smaller (default); raw: no decoding cost, 3*W*H bytes a frame")
    parser.add_argument("--quality", type=int_at_least(1, 100), default=90, help="JPEG quality 1-100 (default 90)")
    parser.add_argument("--workers", type=positive_int, default=1, help="videos decoded in parallel (processes)")
    parser.add_argument("--force", action="store_true", help="redo videos that are already done")
    parser.set_defaults(func=run)


def _work(source: str, out: str, video_id: str, settings, queue) -> dict | str:
    """One video in a worker process: its meta, or the error line."""
    import torch

    from uglspot.data.frame_cache import build_cache
    from uglspot.errors import UserError

    torch.set_num_threads(1)
    try:
        return build_cache(source, out, video_id, settings, progress=queue.put)
    except (UserError, OSError) as exc:
        return str(exc)


def run(args: argparse.Namespace) -> int:
    from uglspot.lock import output_lock

    with output_lock(args.out, "frames"):  # one writer per cache: two with other settings would mix frame sizes
        return cache_videos(args)


def cache_videos(args: argparse.Namespace) -> int:
    from uglspot.data.frame_cache import CacheSettings, build_cache, is_done
    from uglspot.data.inputs import video_entries
    from uglspot.errors import BatchFailures, UserError
    from uglspot.io import safe_name

    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality must be in 1..100, got {args.quality}")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    settings = CacheSettings(fps=args.fps, size=args.size or args.height, format=args.format,
                             quality=args.quality)
    entries = video_entries(args.videos)
    paths, ids = [p for p, _ in entries], [i for _, i in entries]
    names = [safe_name(i) for i in ids]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UserError(f"video ids map to the same cache folder: {', '.join(clash)}; rename the files")
    failures: list[tuple[str, str]] = []
    todo = []
    skipped = 0
    for path, video_id in zip(paths, ids):
        if not path.is_file():
            failures.append((str(path), "no such file" if not path.exists() else "not a file"))
        elif not args.force and is_done(args.out / safe_name(video_id), path, settings):
            skipped += 1
        else:
            todo.append((path, video_id))
    if skipped:
        print(f"{skipped} video(s) already done in {args.out}, skipped", file=sys.stderr)
    quiet = not todo
    from uglspot.progress import progress_bar

    bar = progress_bar("frames: videos", len(todo), "video", disable=quiet)
    frames_bar = progress_bar("frames: decode", unit="frame", position=1, disable=quiet)
    done = []
    if args.workers == 1:
        for path, video_id in todo:
            try:
                done.append(build_cache(path, args.out, video_id, settings, progress=frames_bar.update))
            except (UserError, OSError) as exc:
                failures.append((str(path), str(exc)))
            bar.update(1)
    else:
        import multiprocessing as mp
        import queue as queue_module
        from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED

        context = mp.get_context("spawn")
        with context.Manager() as manager, ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            progress = manager.Queue()
            pending = {pool.submit(_work, str(p), str(args.out), v, settings, progress): p for p, v in todo}
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        frames_bar.update(progress.get_nowait())
                    except queue_module.Empty:
                        break
                for future in finished:
                    path = pending.pop(future)
                    result = future.result()
                    if isinstance(result, str):
                        failures.append((str(path), result))
                    else:
                        done.append(result)
                    bar.update(1)
    frames_bar.close()
    bar.close()
    if done:
        frames = sum(m["num_frames"] for m in done)
        size = sum(m["bytes"] for m in done)
        print(f"cached {len(done)} video(s), {frames} frames, {size / max(frames, 1) / 1024:.1f} KiB/frame "
              f"in {args.out}")
    if failures:
        raise BatchFailures("video(s)", [(name, reason.removeprefix(f"{name}: ")) for name, reason in failures])
    return 0
