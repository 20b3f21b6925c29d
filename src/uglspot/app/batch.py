"""The loop every command over many videos shares: sort the inputs into
those to do, those already done with the same settings (skipped) and those
that are not files (failures), then do each, a bad one going to the
failures while the rest go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass
class Sorted:
    todo: list[tuple[Path, str]] = field(default_factory=list)  # (file, video id)
    skipped: int = 0  # already done with the same settings
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def sort_out(items: Sequence[tuple[Path, str]], done: Callable[[Path, str], bool], force: bool = False) -> Sorted:
    """``items`` (file, video id) sorted into to do, skipped (``done`` and
    not ``force``) and failures (no such file)."""
    batch = Sorted()
    for path, video_id in items:
        if not path.is_file():
            batch.failures.append((str(path), "no such file" if not path.exists() else "not a file"))
        elif not force and done(path, video_id):
            batch.skipped += 1
        else:
            batch.todo.append((path, video_id))
    return batch


def do_each(todo: Sequence[tuple[Path, str]], work: Callable[[Path, str], Any], failures: list[tuple[str, str]],
            bar: Any = None) -> list[Any]:
    """``work(file, video id)`` for each of ``todo``: its results, in order;
    a video whose work raises ``UserError`` or ``OSError`` goes to
    ``failures`` (file, reason) and the others go on. ``bar`` ticks once per video."""
    from uglspot.errors import UserError

    results = []
    for path, video_id in todo:
        try:
            results.append(work(path, video_id))
        except (UserError, OSError) as exc:
            failures.append((str(path), str(exc)))
        if bar is not None:
            bar.update(1)
    return results


def without_names(failures: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Failures whose reason repeats the file's name at its start, without it."""
    return [(name, reason.removeprefix(f"{name}: ")) for name, reason in failures]
