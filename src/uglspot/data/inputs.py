"""Turning command-line video arguments into files, ids and shards."""

from __future__ import annotations

import os
from pathlib import Path

from uglspot.errors import UserError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg", ".flv"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})


def expand_video_inputs(items: list[str | Path]) -> list[Path]:
    """Video files named by ``items``: a video file as is, a directory as the
    video files under it (recursively, sorted), a ``.txt``/``.lst`` file as one
    path per line (relative to the list; blank lines and ``#`` comments skipped).
    Paths that do not exist are kept so the caller reports them per video."""
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            if not found:
                raise UserError(f"{path}: directory contains no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            out.extend(found)
        elif path.suffix.lower() in LIST_SUFFIXES:
            if not path.is_file():
                raise UserError(f"{path}: video list not found")
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    entry = Path(line)
                    out.append(entry if entry.is_absolute() else path.parent / entry)
        else:
            out.append(path)
    if not out:
        raise UserError("no videos given")
    return out


def video_ids(paths: list[Path]) -> list[str]:
    """An id per video: the file name without extension, or, when two files
    share a name (``game1/1.mkv``, ``game2/1.mkv``), the path below the
    common folder of all inputs without extension (``game1/1``)."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    resolved = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    ids = [str(p.relative_to(root).with_suffix("")) for p in resolved]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(f"the same video is given twice: {', '.join(duplicates)}")
    return ids


def shard(items: list, rank: int, world_size: int) -> list:
    """The items rank ``rank`` of ``world_size`` handles: every world_size-th
    item from ``rank`` (round robin, so long and short videos spread evenly)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"bad shard: rank {rank} of world size {world_size}")
    return items[rank::world_size]


def rank_from_env() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) set by torchrun, or (0, 1)."""
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise UserError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                        "must be integers (they are set by torchrun)") from None
