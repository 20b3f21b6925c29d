"""Render a synthetic football dataset: videos, labels, entity stores
(``uglspot synth``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from uglspot.errors import UserError

if TYPE_CHECKING:
    from uglspot.data.labels import Video


def render_dataset(out: str | Path, matches: int | dict[str, int] = 10, minutes: float = 4.0, seed: int = 0,
                   width: int = 224, height: int = 128, fps: float = 8.0, workers: int = 1,
                   overrides: Sequence[str] = ()) -> dict[str, list[Video]]:
    """Render seeded matches into ``out`` (a new or empty folder):
    ``matches`` in all (split train/val/test 70/10/20 %, at least one each)
    or per split (``{"train": 12, "val": 1, "test": 10}``); ``overrides``
    are ``KEY=VALUE`` renderer settings (docs/demo.md). The same seed gives
    the same dataset. Returns each split's videos and events."""
    from uglspot.lock import new_output

    out = Path(out)
    with new_output(out, "synth", f"{out}: already exists and is not an empty directory; choose a new --out"):
        return _render(out, matches, minutes, seed, width, height, fps, workers, overrides)


def _render(out: Path, matches: int | dict[str, int], minutes: float, seed: int, width: int, height: int,
            fps: float, workers: int, overrides: Sequence[str]) -> dict[str, list[Video]]:
    from uglspot.config import apply_overrides, from_dict
    from uglspot.synth import SynthConfig, generate_dataset, split_counts

    if isinstance(matches, dict):
        counts = dict(matches)
    else:
        try:
            counts = split_counts(matches)
        except ValueError as exc:
            raise UserError(f"--matches: {exc}") from None
    data = apply_overrides({"width": width, "height": height, "fps": fps, "minutes": minutes}, list(overrides))
    cfg = from_dict(SynthConfig, data, "synth settings")
    return generate_dataset(out, cfg, counts, seed, workers=max(1, workers))
