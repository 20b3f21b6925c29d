"""The report's pictures as PNG bytes (matplotlib, Agg backend, no display).

Every figure is drawn at ``DPI`` pixels per inch and shown by the report at
its natural size, so a font of F points here is F points on the reader's
screen (CSS: 96 px per inch). No text is smaller than ``SMALLEST_FONT``; the
PNG records the smallest one it holds (text chunk ``smallest-font-pt``) so a
test can check the size a browser shows.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, Sequence

import numpy as np

from uglspot.data.labels import Video
from uglspot.report.curves import PRCurve
from uglspot.data.events import SpottedEvent, VideoEvents

VARIANT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
TOLERANCE_STYLES = ("-", "--", ":", "-.")
ENTITY_COLOURS = {"ball": "#ffffff", "yellow card": "#ffd400", "red card": "#ff2020", "goal": "#9ad0ff",
                  "referee": "#ff66ff", "player": "#66ffcc"}
DPI = 96  # one figure pixel per CSS pixel: points here are points on screen
SMALLEST_FONT = 9.5  # points; the report's pictures hold no smaller text
TICK_WIDEST = "0.0088"  # the widest score-axis label a timeline lays out room for
TIMELINE_FRACTION = 0.5  # without ground truth, a timeline shows events scoring at least this share of the top


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, **text: str) -> bytes:
    """The figure as PNG bytes; its text chunks hold ``text`` and the
    smallest font size (points) of any visible text in it."""
    from matplotlib.text import Text

    fig.canvas.draw()  # lay out first: tick labels exist only once drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    metadata = {"smallest-font-pt": f"{min(sizes):g}" if sizes else "", **text}
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, metadata=metadata)
    _pyplot().close(fig)
    return buffer.getvalue()


def score_limit(top: float) -> float:
    """The top of a score axis: ``top`` rounded up at its second significant
    digit (0.724 -> 0.73, 0.0213 -> 0.022); 1 for no score."""
    if not top > 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(top)) / 10
    limit = math.ceil(round(top / step, 6)) * step
    return min(limit, 1.0) if top <= 1 else limit


def relative_thresholds(video: VideoEvents, classes: Sequence[str]) -> dict[str, float]:
    """Timeline thresholds without ground truth: ``TIMELINE_FRACTION`` of
    the video's top score, for every class, so a weak model's best guesses
    show as a strong model's do."""
    top = max((e.score for e in video.events if e.label in classes), default=float("inf"))
    return dict.fromkeys(classes, TIMELINE_FRACTION * top)


def pr_figure(label: str, curves: dict[tuple[str, int], PRCurve], variants: Sequence[str]) -> bytes:
    """One class: a curve per (variant, tolerance), the legend below the plot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.9), dpi=DPI, layout="constrained")
    tolerances = sorted({t for _, t in curves})
    for (variant, tolerance), curve in curves.items():
        if curve.recall.size == 0:
            continue
        colour = VARIANT_COLOURS[list(variants).index(variant) % len(VARIANT_COLOURS)]
        style = TOLERANCE_STYLES[tolerances.index(tolerance) % len(TOLERANCE_STYLES)]
        ap = curve.average_precision
        ax.step(np.concatenate([[0.0], curve.recall]), np.concatenate([[curve.precision[0]], curve.precision]),
                where="post", color=colour, linestyle=style, linewidth=1.5,
                label=f"{variant} δ={tolerance}" + (f": AP {100 * ap:.1f}" if ap is not None else ""))
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall", fontsize=10)
    ax.set_ylabel("precision", fontsize=10)
    ax.tick_params(labelsize=SMALLEST_FONT)
    ax.set_title(label, fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", fontsize=SMALLEST_FONT, frameon=False, handlelength=2.4)
    return _png(fig)


def _timeline_row(ax: Any, row: int, label: str, truth: Video | None, variants: dict[str, VideoEvents],
                  thresholds: dict[str, dict[str, float]], probs: np.ndarray | None, scale: float, width: float,
                  counts: dict[str, int]) -> float:
    """One class's row of :func:`timeline_figure`; adds the events drawn
    to ``counts`` and returns the row's score-axis top."""
    highest = 0.0
    if probs is not None and row + 1 < probs.shape[1]:
        seconds = (np.arange(probs.shape[0]) + 0.5) * scale
        ax.fill_between(seconds, probs[:, row + 1], step="mid", color="#b8bcc6", linewidth=0, zorder=1)
        highest = float(probs[:, row + 1].max(initial=0.0))
    if truth is not None:
        for event in truth.events:
            if event.label == label:
                ax.axvline(event.frame * scale, color="black", linewidth=1.8, zorder=2)
    lines: list[tuple[str, str, float]] = []  # (variant, colour, threshold) of each variant
    for k, (name, video) in enumerate(variants.items()):
        colour = VARIANT_COLOURS[k % len(VARIANT_COLOURS)]
        threshold = thresholds.get(name, {}).get(label, math.inf)
        shown = [e for e in video.events if e.label == label and e.score >= threshold]
        counts[name] += len(shown)
        lines.append((name, colour, threshold))
        if shown:
            highest = max([highest, *(e.score for e in shown)])
            offset = (k - (len(variants) - 1) / 2) * width / 400  # side by side where variants agree
            xs = [e.frame * scale + offset for e in shown]
            ax.vlines(xs, 0, [e.score for e in shown], color=colour, linewidth=1.6, zorder=3)
            ax.plot(xs, [e.score for e in shown], "o", color=colour, markersize=4.5, zorder=4)
    if probs is None or highest > 0 and any(t <= highest for _, _, t in lines):
        # Thresholds as dotted lines, on the axis; else (only a per-frame score below them) in words.
        highest = max([highest] + [t for _, _, t in lines if t < math.inf])
        for name, colour, threshold in lines:
            if threshold < math.inf:
                ax.axhline(threshold, color=colour, linewidth=0.9, linestyle=":", zorder=2)
    else:
        for k, (name, colour, threshold) in enumerate(lines):
            ax.text(0.998, 0.95 - 0.4 * k,
                    f"{name}: none ≥ {threshold:.2g}" if threshold < math.inf else f"{name}: no event",
                    transform=ax.transAxes, ha="right", va="top", color=colour, fontsize=SMALLEST_FONT,
                    zorder=5, bbox=dict(facecolor="white", alpha=0.8, pad=0.5, linewidth=0))
    top = score_limit(highest)
    ax.set_ylim(0, top * 1.06)
    ax.set_yticks([0, top], ["0", TICK_WIDEST])  # the real label once laid out (below)
    ax.tick_params(axis="y", labelsize=SMALLEST_FONT, length=2, pad=1)
    ax.tick_params(axis="x", labelsize=SMALLEST_FONT)
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return top


def timeline_figure(video_id: str, classes: Sequence[str], truth: Video | None,
                    variants: dict[str, VideoEvents], num_frames: int, fps: float,
                    thresholds: dict[str, dict[str, float]], rule: str, probs: np.ndarray | None = None) -> bytes:
    """One row per class over the whole video: the ground-truth events as
    black bars; each variant's events of the class scoring at least its
    threshold (``thresholds[variant][class]``, a dotted line; ``rule`` says
    in a few words how they were chosen) as stems whose height is the score,
    one colour per variant; with ``probs`` (T, K+1), the class's per-frame
    probability as a grey area. Each row's score axis runs from 0 to
    ``score_limit`` of the highest score or threshold line it shows,
    labelled on the row; a row whose per-frame score stays below the
    thresholds states them in words instead. The one timeline plot of ``uglspot report`` and ``uglspot
    spot``; the PNG's text chunk ``timeline`` holds, as JSON, each row's
    axis top (``axis_top``) and the events drawn per variant (``shown``)."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = max(len(classes), 1)
    fig, axes = plt.subplots(rows, 1, sharex=True, squeeze=False, figsize=(11, 0.68 * rows + 1.3), dpi=DPI,
                             layout="constrained")
    axes = axes[:, 0]
    fig.get_layout_engine().set(h_pad=0.01, hspace=0.0)
    scale = 1 / fps if fps > 0 else 1.0
    width = num_frames * scale
    axis_top: dict[str, float] = {}
    handles: list = []
    if probs is not None:
        handles.append(Patch(color="#b8bcc6", label="per-frame score"))
    if truth is not None:
        handles.append(Line2D([0], [0], color="black", linewidth=1.8, label="ground truth"))
    counts = dict.fromkeys(variants, 0)
    for row, (label, ax) in enumerate(zip(classes, axes)):
        axis_top[label] = _timeline_row(ax, row, label, truth, variants, thresholds, probs, scale, width, counts)
    for k, name in enumerate(variants):
        handles.append(Line2D([0], [0], color=VARIANT_COLOURS[k % len(VARIANT_COLOURS)], linewidth=1.6,
                              marker="o", markersize=4.5, label=f"{name} ({counts[name]} shown)"))
    axes[-1].set_xlim(0, width)
    axes[-1].set_xlabel("time (s)" if fps > 0 else "frame", fontsize=10)
    fig.suptitle(f"{video_id} · each row's score axis fitted to the row · stems: events above the dotted "
                 f"threshold ({rule})", x=0.01, ha="left", fontsize=10)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=10, frameon=False)
    fig.canvas.draw()  # lay out with the widest tick label, then freeze: rows line up whatever the scores
    fig.set_layout_engine("none")
    for label, ax in zip(classes, axes):
        ax.set_yticks([0, axis_top[label]], ["0", f"{axis_top[label]:.2g}"])
    return _png(fig, timeline=json.dumps({"axis_top": axis_top, "shown": counts}))


def gallery_figure(frame: np.ndarray | None, event: SpottedEvent, size: tuple[int, int]) -> bytes:
    """The event frame (H, W, 3) uint8 with each entity box drawn with line
    width and opacity in proportion to its attention weight; the three
    heaviest carry their class and weight."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    width, height = size
    scale = max(1.0, 440.0 / max(width, 1))
    fig = plt.figure(figsize=(width * scale / DPI, height * scale / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    if frame is None:
        ax.imshow(np.full((height, width, 3), 40, dtype=np.uint8))
        ax.text(width / 2, height / 2, "video not found", color="white", ha="center", va="center",
                fontsize=SMALLEST_FONT)
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
            above = y1 > 0.12  # room for the label above the box; else below it
            right = x1 > 0.6  # end the label at the box's right edge, inside the frame
            ax.text((x2 if right else x1) * width, (y1 * height - 1) if above else (y2 * height + 1),
                    f"{entity.cls} {entity.weight:.2f}", color=colour, fontsize=SMALLEST_FONT,
                    va="bottom" if above else "top", ha="right" if right else "left", alpha=0.4 + 0.6 * share,
                    bbox=dict(facecolor="black", alpha=0.45, pad=0.6, linewidth=0))
    return _png(fig)
