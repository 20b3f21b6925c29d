"""Small file helpers shared by every module that writes: atomic writes,
JSON with located errors, and safe output names from video ids."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from uglspot.errors import UserError


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text at byte {exc.start}; is this a JSON file?") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); fix the file and retry"
        ) from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it
    over `path`, so a reader never sees a half-written file and a killed run
    leaves the old file (or none) in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def refuse_overwrite(output: str | Path, *inputs: str | Path) -> None:
    """Raise if `output` is one of the input files: nothing the user had is lost."""
    out = Path(output).resolve()
    for item in inputs:
        if Path(item).resolve() == out:
            raise UserError(f"{output}: output would overwrite an input file; choose another output path")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(video_id: str) -> str:
    """A file-system-safe name for a video id: path separators and other
    characters become '_', and it can never be '.', '..' or empty.

    Different ids may map to the same name only if they differ in unsafe
    characters; callers that write many videos check for such collisions.
    """
    name = _UNSAFE.sub("_", video_id).strip("._")
    return name or "video"
