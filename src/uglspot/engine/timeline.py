"""A timeline PNG of one video: per-class scores over time, spotted events marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from uglspot.io import atomic_path


def plot_timeline(path: str | Path, probs: np.ndarray, classes: Sequence[str], fps: float,
                  events: Sequence[tuple[int, str, float]], title: str) -> None:
    """``probs`` (T, K+1) as a class × time heat map; ``events`` (frame, label, score) as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = probs.shape[0]
    rate = fps if fps > 0 else 1.0
    unit = "s" if fps > 0 else "frame"
    figure, axis = plt.subplots(figsize=(12, 1.2 + 0.28 * len(classes)), dpi=100)
    image = axis.imshow(probs[:, 1:].T, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0,
                        extent=(0, max(T, 1) / rate, len(classes) - 0.5, -0.5))
    row = {name: i for i, name in enumerate(classes)}
    if events:
        times = [frame / rate for frame, _, _ in events]
        rows = [row[label] for _, label, _ in events]
        axis.scatter(times, rows, s=[12 + 40 * score for _, _, score in events], facecolors="none",
                     edgecolors="red", linewidths=0.8, label="spotted")
        axis.legend(loc="upper right", fontsize=7)
    axis.set_yticks(range(len(classes)), labels=list(classes), fontsize=7)
    axis.set_xlabel(f"time ({unit})")
    axis.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.02, pad=0.01, label="score")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
