"""Decode videos once into a frame cache for training (``uglspot frames``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class FramesOutcome:
    """What :func:`cache_frames` did."""

    out: Path
    done: list[dict[str, Any]] = field(default_factory=list)  # the meta of each video cached now
    skipped: int = 0  # videos already cached with the same settings
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video file, reason)

    @property
    def frames(self) -> int:
        return sum(m["num_frames"] for m in self.done)

    @property
    def bytes(self) -> int:
        return sum(m["bytes"] for m in self.done)


def cache_frames(videos: Sequence[str | Path], out: str | Path, fps: float | None = None,
                 size: int | tuple[int, int] | None = None, format: str = "jpeg", quality: int = 90,
                 workers: int = 1, force: bool = False) -> FramesOutcome:
    """Decode each video once at ``fps`` (None: native) and ``size`` (a
    height keeping the aspect ratio, or (width, height); None: native) into
    ``out/<video>/`` (``jpeg`` at ``quality``, or ``raw`` uint8), ``workers``
    videos in parallel processes. Videos already done with the same settings
    are skipped unless ``force``; a bad video goes to ``failures``."""
    from uglspot.lock import output_lock

    out = Path(out)
    with output_lock(out, "frames"):  # one writer per cache: two with other settings would mix frame sizes
        return _cache_videos(videos, out, fps, size, format, quality, workers, force)


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


def _cache_videos(videos: Sequence[str | Path], out: Path, fps: float | None, size: Any, format: str,
                  quality: int, workers: int, force: bool) -> FramesOutcome:
    from uglspot.app.batch import do_each, sort_out, without_names
    from uglspot.data.frame_cache import CacheSettings, build_cache, is_done
    from uglspot.data.inputs import video_entries
    from uglspot.errors import UserError
    from uglspot.io import safe_name

    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be in 1..100, got {quality}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    settings = CacheSettings(fps=fps, size=size, format=format, quality=quality)
    entries = video_entries(list(videos))
    paths, ids = [p for p, _ in entries], [i for _, i in entries]
    names = [safe_name(i) for i in ids]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UserError(f"video ids map to the same cache folder: {', '.join(clash)}; rename the files")
    batch = sort_out(list(zip(paths, ids)), lambda path, video_id: is_done(out / safe_name(video_id), path, settings),
                     force)
    todo, failures = batch.todo, batch.failures
    quiet = not todo
    from uglspot.progress import progress_bar

    bar = progress_bar("frames: videos", len(todo), "video", disable=quiet)
    frames_bar = progress_bar("frames: decode", unit="frame", position=1, disable=quiet)
    done = []
    if workers == 1:
        done = do_each(todo, lambda path, video_id: build_cache(path, out, video_id, settings,
                                                                progress=frames_bar.update), failures, bar)
    else:
        from uglspot.app.pool import run_in_processes

        def ended(index: int, result: dict | str) -> None:
            if isinstance(result, str):
                failures.append((str(todo[index][0]), result))
            else:
                done.append(result)
            bar.update(1)

        run_in_processes([(_work, (str(p), str(out), v, settings)) for p, v in todo], workers,
                         frames_bar.update, ended)
    frames_bar.close()
    bar.close()
    return FramesOutcome(out, done, batch.skipped, without_names(failures))
