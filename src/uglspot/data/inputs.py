"""Video files and their ids, both ways: command-line video arguments into
(file, id) pairs (:func:`video_entries`), and an id back to its file under a
videos folder (:func:`locate_video`), with one SoccerNet half rule for both
(``<game>/1_224p.mkv`` is ``<game>/1``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from uglspot.errors import UserError, listed
from uglspot.io import inside, safe_name
from uglspot.video import VIDEO_SUFFIXES

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
SOCCERNET_HALF = re.compile(r"^([12])(_\d+p)?$")  # a half's file name: 1, 2, 1_224p, 2_720p ...
SOCCERNET_QUALITIES = ("224p", "720p", "398p")  # the releases' files, looked for first and in this order


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
                raise UserError(f"{path}: directory contains no video files ({', '.join(VIDEO_SUFFIXES)})")
            out.extend(found)
        elif path.suffix.lower() in LIST_SUFFIXES:
            out.extend(file for file, _ in _read_list(path))
        else:
            out.append(path)
    if not out:
        raise UserError("no videos given")
    return out


def _read_list(path: Path) -> list[tuple[Path, str | None]]:
    """(file, id) per line of a video list: a relative line is relative to the
    list and its id is the line without extension; an absolute one has no id yet."""
    out: list[tuple[Path, str | None]] = []
    from uglspot.io import read_text

    for line in read_text(path, "video list (one path per line)").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entry = Path(line)
            relative = not entry.is_absolute() and ".." not in entry.parts
            out.append((entry if entry.is_absolute() else path.parent / entry,
                        entry.with_suffix("").as_posix() if relative else None))
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
    ids = [p.relative_to(root).with_suffix("").as_posix() for p in resolved]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(f"the same video is given twice: {', '.join(duplicates)}")
    return ids


def soccernet_id(video_id: str) -> str:
    """``<game>/1_224p`` (a SoccerNet half file) → ``<game>/1``, the id its labels use."""
    game, _, name = video_id.rpartition("/")
    match = SOCCERNET_HALF.match(name)
    return f"{game}/{match.group(1)}" if game and match else video_id


def video_entries(items: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, video id) of every video named by ``items`` (see
    ``expand_video_inputs``), with one id rule shared by ``frames``,
    ``detect``, ``spot`` and training's ``data.videos``: a file inside a
    folder given on the command line (or named by a relative line of a list)
    is its path below that folder (list) without extension, so
    ``uglspot detect VIDEOS/`` names stores as ``data.videos: VIDEOS`` finds
    the files; a file given directly is its name without extension (the path
    below the files' common folder when names clash). A SoccerNet half
    ``<game>/1_224p.mkv`` is ``<game>/1``."""
    entries: list[tuple[Path, str | None]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            entries.extend((p, p.relative_to(path).with_suffix("").as_posix()) for p in expand_video_inputs([path]))
        elif path.suffix.lower() in LIST_SUFFIXES:
            entries.extend(_read_list(path))
        else:
            entries.append((path, None))
    loose = [i for i, (_, video_id) in enumerate(entries) if video_id is None]
    for i, video_id in zip(loose, video_ids([entries[i][0] for i in loose]) if loose else []):
        entries[i] = (entries[i][0], video_id)
    out = [(path, soccernet_id(str(video_id))) for path, video_id in entries]
    ids = [video_id for _, video_id in out]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(f"two inputs have the same video id: {listed(duplicates, 5)}; "
                        "give each video once (ids are paths below the folder given, without extension)")
    return out


def locate_video(root: Path, video_id: str) -> Path | None:
    """The file of ``video_id`` under ``root``, or None: ``<id>.<ext>``; for a
    SoccerNet half ``<game>/<half>`` the files ``<game>/<half>_224p.mkv``,
    ``<half>_720p.mkv``, ``<half>_398p.mkv`` (first that exists), then any
    other ``<half>_<N>p`` file of the game (the names :func:`soccernet_id`
    gives ``<game>/<half>``); else a file named by the id's safe name
    (``safe_name(id).<ext>``, as uglspot names per-video outputs). The one
    lookup of training, predict and the report. An id that is absolute or
    climbs out of ``root`` is refused."""
    base = inside(root, video_id)  # a label's id never names a file outside data.videos
    candidates = [base.with_name(f"{base.name}{ext}") for ext in VIDEO_SUFFIXES]
    if base.is_file():
        candidates.insert(0, base)
    game, _, half = video_id.rpartition("/")
    if half in ("1", "2"):
        folder = root / game
        candidates += [folder / f"{half}_{quality}{ext}" for quality in SOCCERNET_QUALITIES for ext in VIDEO_SUFFIXES]
        if game and folder.is_dir():
            candidates += sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES
                                 and soccernet_id(f"{game}/{p.stem}") == video_id)
    candidates += [root / f"{safe_name(video_id)}{ext}" for ext in VIDEO_SUFFIXES]
    return next((path for path in candidates if path.is_file()), None)


def find_video_file(root: Path, video_id: str) -> Path:
    """:func:`locate_video`, or a UserError naming where it looked."""
    path = locate_video(root, video_id)
    if path is None:
        raise UserError(f"video {video_id!r}: no file {root}/{video_id}.<{'|'.join(e[1:] for e in VIDEO_SUFFIXES)}>; "
                        "check data.videos or use data.frame_cache")
    return path
