"""The report's pictures as PNG bytes (matplotlib, Agg backend, no display)."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from uglspot.data.labels import Video
from uglspot.report.curves import PRCurve
from uglspot.data.events import SpottedEvent, VideoEvents

VARIANT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
TOLERANCE_STYLES = ("-", "--", ":", "-.")
ENTITY_COLOURS = {"ball": "#ffffff", "yellow card": "#ffd400", "red card": "#ff2020", "goal": "#9ad0ff",
                  "referee": "#ff66ff", "player": "#66ffcc"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    _pyplot().close(fig)
    return buffer.getvalue()


def pr_figure(label: str, curves: dict[tuple[str, int], PRCurve], variants: Sequence[str]) -> bytes:
    """One class: a curve per (variant, tolerance)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 2.9), dpi=100)
    tolerances = sorted({t for _, t in curves})
    for (variant, tolerance), curve in curves.items():
        if curve.recall.size == 0:
            continue
        colour = VARIANT_COLOURS[list(variants).index(variant) % len(VARIANT_COLOURS)]
        style = TOLERANCE_STYLES[tolerances.index(tolerance) % len(TOLERANCE_STYLES)]
        ap = curve.average_precision
        ax.step(np.concatenate([[0.0], curve.recall]), np.concatenate([[curve.precision[0]], curve.precision]),
                where="post", color=colour, linestyle=style, linewidth=1.3,
                label=f"{variant} δ={tolerance}" + (f" AP {100 * ap:.1f}" if ap is not None else ""))
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(label, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return _png(fig)


def timeline_figure(video_id: str, classes: Sequence[str], truth: Video | None,
                    variants: dict[str, VideoEvents], num_frames: int, fps: float,
                    probs: np.ndarray | None = None) -> bytes:
    """Scores of spotted events (stems, one colour per variant) against the
    ground-truth events (black bars), one row per class, over the whole video;
    with ``probs`` (T, K+1), each row also shows its class's per-frame
    probability as a grey band behind the stems. The one timeline plot of
    ``uglspot report`` and ``uglspot spot``."""
    plt = _pyplot()
    rows = len(classes)
    fig, ax = plt.subplots(figsize=(11, 0.42 * rows + 0.9), dpi=90)
    index = {c: i for i, c in enumerate(classes)}
    seconds = (lambda f: f / fps) if fps > 0 else (lambda f: f)
    if probs is not None:
        image = ax.imshow(probs[:, 1:].T, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0.0, vmax=1.0,
                          extent=(0, seconds(probs.shape[0]), rows - 0.1, -0.1), alpha=0.6, zorder=0)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="score")
    if truth is not None:
        for event in truth.events:
            if event.label in index:
                y = index[event.label]
                ax.vlines(seconds(event.frame), y - 0.05, y + 0.9, color="black", linewidth=1.6, zorder=3)
    names = list(variants)
    for k, (name, video) in enumerate(variants.items()):
        colour = VARIANT_COLOURS[k % len(VARIANT_COLOURS)]
        offset = (k - (len(names) - 1) / 2) * 0.5
        xs, y0, y1 = [], [], []
        for event in video.events:
            if event.label in index:
                xs.append(seconds(event.frame) + offset * (num_frames / max(fps, 1e-6)) / 2000)
                y0.append(index[event.label])
                y1.append(index[event.label] + 0.85 * event.score)
        if xs:
            ax.vlines(xs, y0, y1, color=colour, linewidth=1.0, alpha=0.8, label=name)
            ax.scatter(xs, y1, s=6, color=colour, zorder=4)
    ax.set_yticks(np.arange(rows) + 0.4)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_ylim(-0.2, rows)
    ax.set_xlim(0, seconds(num_frames))
    ax.set_xlabel("time (s)" if fps > 0 else "frame")
    for y in range(rows + 1):
        ax.axhline(y - 0.1, color="#dddddd", linewidth=0.5, zorder=0)
    handles, _ = ax.get_legend_handles_labels()
    if truth is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([0], [0], color="black", linewidth=1.6, label="ground truth"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(handles),
                  frameon=False, borderaxespad=0.2)
    ax.set_title(video_id, fontsize=9, loc="left")
    fig.tight_layout()
    return _png(fig)


def gallery_figure(frame: np.ndarray | None, event: SpottedEvent, size: tuple[int, int]) -> bytes:
    """The event frame (H, W, 3) uint8 with each entity box drawn with line
    width and opacity in proportion to its attention weight; the three
    heaviest carry their class and weight."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    width, height = size
    scale = max(1.0, 440.0 / max(width, 1))
    fig = plt.figure(figsize=(width * scale / 100, height * scale / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    if frame is None:
        ax.imshow(np.full((height, width, 3), 40, dtype=np.uint8))
        ax.text(width / 2, height / 2, "video not found", color="white", ha="center", va="center", fontsize=9)
    else:
        ax.imshow(frame, interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    entities = sorted(event.entities, key=lambda e: -e.weight)
    top = max((e.weight for e in entities), default=0.0)
    for rank, entity in enumerate(entities):
        share = entity.weight / top if top > 0 else 0.0
        x1, y1, x2, y2 = entity.box
        colour = ENTITY_COLOURS.get(entity.cls, "#00e5ff")
        ax.add_patch(Rectangle((x1 * width, y1 * height), (x2 - x1) * width, (y2 - y1) * height, fill=False,
                               edgecolor=colour, linewidth=0.4 + 3.6 * share, alpha=0.15 + 0.85 * share))
        if rank < 3 and share > 0:
            ax.text(x1 * width, y1 * height - 1, f"{entity.cls} {entity.weight:.2f}", color=colour,
                    fontsize=7, va="bottom", alpha=0.4 + 0.6 * share,
                    bbox=dict(facecolor="black", alpha=0.45, pad=0.6, linewidth=0))
    return _png(fig)
