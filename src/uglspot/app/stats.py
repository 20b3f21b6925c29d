"""What a label file or a dataset folder holds (``uglspot stats``): events
per class, events per video, and gaps between consecutive events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from uglspot.errors import UserError

if TYPE_CHECKING:
    from uglspot.data.labels import Video


@dataclass
class LabelStats:
    """Statistics of every split of one label file or dataset folder."""

    root: Path  # the file, or the dataset folder (the one holding class.txt)
    classes: list[str]
    splits: dict[str, dict[str, Any]]  # split name -> split_stats()
    combined: dict[str, Any] | None  # all splits together, when there are two or more
    skipped: list[Path] = field(default_factory=list)  # JSON files beside the splits that are not labels
    failures: list[tuple[str, str]] = field(default_factory=list)  # (label file, reason)
    plot: Path | None = None  # the PNG written, if any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.root), "classes": list(self.classes),
                               "splits": {name: _public(s) for name, s in self.splits.items()}}
        if self.combined is not None:
            out["all"] = _public(self.combined)
        if self.skipped:
            out["skipped"] = [p.name for p in self.skipped]
        return out

    def text(self) -> str:
        """One block per split (and one for all of them), as ``uglspot stats`` prints."""
        blocks = [format_split(str(self.root) if self.root.is_file() else f"{self.root}/{name}.json", s)
                  for name, s in self.splits.items()]
        if self.combined is not None:
            blocks.append(format_split(f"{self.root}: all {len(self.splits)} splits", self.combined))
        return "\n\n".join(blocks)


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    import numpy as np

    if not len(values):
        return None
    array = np.asarray(values, dtype=np.float64)
    return {"min": float(array.min()), "median": float(np.median(array)),
            "mean": float(array.mean()), "max": float(array.max())}


def split_stats(videos: Sequence[Video], classes: Sequence[str]) -> dict[str, Any]:
    """Statistics of one split; also the raw per-video counts and gaps for plots."""
    import numpy as np

    per_class = {name: 0 for name in classes}
    per_video, gap_frames, gap_seconds = [], [], []
    past_end = 0
    for video in videos:
        per_video.append(len(video.events))
        frames = np.sort(np.asarray([e.frame for e in video.events], dtype=np.int64))
        gaps = np.diff(frames)
        gap_frames.extend(gaps.tolist())
        if video.fps > 0:
            gap_seconds.extend((gaps / video.fps).tolist())
        for event in video.events:
            per_class[event.label] = per_class.get(event.label, 0) + 1
            past_end += event.frame >= video.num_frames
    return {
        "videos": len(videos),
        "frames": int(sum(v.num_frames for v in videos)),
        "events": int(sum(per_video)),
        "events_past_end": int(past_end),
        "events_per_class": per_class,
        "events_per_video": _summary(per_video),
        "gap_frames": _summary(gap_frames),
        "gap_seconds": _summary(gap_seconds),
        "_raw": {"per_video": per_video, "gap_frames": gap_frames},
    }


def _public(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if not k.startswith("_")}


def _fmt(summary: dict[str, float] | None, unit: str = "", digits: int = 1) -> str:
    if summary is None:
        return "n/a"

    def number(x: float) -> str:
        return f"{x:.0f}" if float(x).is_integer() else f"{x:.{digits}f}"

    return " / ".join(f"{key} {number(summary[key])}{unit}" for key in ("min", "median", "mean", "max"))


def format_split(name: str, stats: dict[str, Any]) -> str:
    lines = [f"{name}: {stats['videos']} videos, {stats['frames']:,} frames, {stats['events']:,} events"
             + (f" ({stats['events_past_end']} at or past the end of their video)" if stats["events_past_end"] else "")]
    width = max([len(c) for c in stats["events_per_class"]] + [5])
    lines.append("  events per class:")
    for label, count in stats["events_per_class"].items():
        lines.append(f"    {label:<{width}} {count:>8,}")
    lines.append(f"  events per video: {_fmt(stats['events_per_video'])}")
    lines.append(f"  gap between consecutive events, frames: {_fmt(stats['gap_frames'])}")
    seconds = stats["gap_seconds"]
    lines.append("  gap between consecutive events, seconds: "
                 + (_fmt(seconds, 's', 2) if seconds else "n/a" if not stats["gap_frames"]
                    else "n/a (no video has fps > 0)"))
    return "\n".join(lines)


def write_plot(path: Path, title: str, splits: dict[str, dict[str, Any]], classes: Sequence[str]) -> None:
    """Three panels: events per class (bars stacked by split), histograms of
    events per video and of gaps in frames (one outline per split)."""
    import numpy as np
    from matplotlib.figure import Figure

    from uglspot.io import atomic_path

    height = max(4.0, 0.22 * len(classes) + 1.5)
    figure = Figure(figsize=(15, height), layout="constrained")
    bars, per_video, gaps = figure.subplots(1, 3, width_ratios=[1.3, 1, 1])
    left = np.zeros(len(classes))
    y = np.arange(len(classes))
    for name, stats in splits.items():
        counts = np.asarray([stats["events_per_class"].get(c, 0) for c in classes], dtype=float)
        bars.barh(y, counts, left=left, label=name)
        left += counts
    bars.set_yticks(y, classes, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("events")
    bars.set_title("events per class")
    for name, stats in splits.items():
        raw = stats["_raw"]
        if raw["per_video"]:
            top = max(raw["per_video"])
            per_video.hist(raw["per_video"], bins=np.arange(0, top + 2) - 0.5 if top < 60 else 40,
                           histtype="step", linewidth=1.5, label=name)
        if raw["gap_frames"]:
            gaps.hist(raw["gap_frames"], bins=50, histtype="step", linewidth=1.5, label=name)
    per_video.set_xlabel("events in a video")
    per_video.set_ylabel("videos")
    per_video.set_title("events per video")
    gaps.set_xlabel("frames between consecutive events of a video")
    gaps.set_ylabel("gaps")
    gaps.set_yscale("log")
    gaps.set_title("gaps between events")
    for axis in (bars, per_video, gaps):
        if len(splits) > 1:
            axis.legend(fontsize=8)
    figure.suptitle(title)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


def _load_split(path: Path, classes: Sequence[str] | None) -> list[Video]:
    from uglspot.data.labels import read_e2e_labels

    # Statistics describe files as they are, so events past a video's end are counted, not refused.
    return read_e2e_labels(path, classes, allow_past_end=True)


def label_stats(labels: str | Path, plot: str | Path | None = None) -> LabelStats:
    """Statistics of one ``{split}.json`` file or of every split of a
    dataset folder (the folder holding class.txt, or a folder with one such
    folder inside, as the demo writes); ``plot``: also write histograms to
    this PNG. A label file that cannot be read goes to ``failures``."""
    from uglspot.data.labels import read_class_list
    from uglspot.io import refuse_overwrite

    root = Path(labels)
    skipped: list[Path] = []
    if root.is_dir():
        root = dataset_folder(root)
        class_path = root / "class.txt"
        files, skipped = split_files(root)
        if not files:
            raise UserError(f"{root}: no {{split}}.json label files beside class.txt")
    elif root.is_file():
        class_path = root.parent / "class.txt"
        files = [root]
    else:
        raise UserError(f"{root}: no such file or folder")
    classes = read_class_list(class_path) if class_path.is_file() else None
    plot = Path(plot) if plot else None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise UserError(f"--plot {plot}: the plot is a PNG image; give the file a .png name")
        refuse_overwrite(plot, *files, class_path)

    loaded: dict[str, list[Video]] = {}
    failures: list[tuple[str, str]] = []
    for path in files:
        try:
            loaded[path.stem] = _load_split(path, classes)
        except UserError as exc:
            failures.append((str(path), str(exc)))
    if classes is None:
        classes = sorted({e.label for videos in loaded.values() for v in videos for e in v.events})
    splits = {name: split_stats(videos, classes) for name, videos in loaded.items()}
    combined = split_stats([v for videos in loaded.values() for v in videos], classes) if len(splits) > 1 else None
    if plot is not None and splits:
        write_plot(plot, str(root), splits, classes)
    else:
        plot = None
    return LabelStats(root, list(classes), splits, combined, skipped, failures, plot)


def dataset_folder(root: Path) -> Path:
    """The folder holding class.txt: ``root`` itself, or the one folder
    inside it that holds one (``uglspot demo`` writes DIR/dataset/)."""
    if (root / "class.txt").is_file():
        return root
    inside = sorted(p.parent for p in root.glob("*/class.txt"))
    if len(inside) == 1:
        return inside[0]
    if inside:
        raise UserError(f"{root}: {len(inside)} dataset folders inside ({', '.join(p.name for p in inside)}); "
                        "pass one of them")
    raise UserError(f"{root}: no class.txt in this folder or a folder inside it; pass a dataset folder "
                    "(class.txt plus {split}.json files) or one split file")


def split_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The label files of a dataset folder and the JSON files beside them that
    are not labels: a split file is a JSON list, so a file that starts with
    ``{`` (synth's dataset.json, a demo's summary) is skipped, while an empty
    or garbled file is read and reported."""
    files, skipped = [], []
    for path in sorted(root.glob("*.json")):
        with open(path, "rb") as handle:
            head = handle.read(4096).lstrip()
        (skipped if head.startswith(b"{") else files).append(path)
    return files, skipped
