"""One self-contained static HTML report: no server, no script, no network.

Every picture is a PNG embedded as a ``data:`` URI and every text that comes
from the inputs (class names, video ids, variant names, entity classes) goes
through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from uglspot.data.events import SpottedEvent, VideoEvents
from uglspot.errors import UserError, brief
from uglspot.metrics.spotting import match_frames
from uglspot.report.ap_table import ap_rows
from uglspot.report.curves import PRCurve, pr_curves, spotting_threshold
from uglspot.report.inputs import ReportInputs

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1180px;
       color: #1d2330; background: #fbfbfd; padding: 0 16px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #d8dbe2; padding-bottom: 4px; margin-top: 2em; }
h3 { font-size: 1.02em; margin: 1.2em 0 0.4em; }
p.meta, p.note { color: #555d6e; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; background: white; }
th, td { border: 1px solid #d8dbe2; padding: 4px 10px; text-align: right; }
th { background: #eef0f5; }
td.name, th.name { text-align: left; }
tr.mean td { font-weight: 600; background: #f5f6fa; }
td.best { font-weight: 700; color: #0b5d1e; }
td.gain { color: #0b5d1e; } td.loss { color: #a11; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; background: white; border: 1px solid #e2e4ea; padding: 6px; border-radius: 4px; }
figure img { display: block; max-width: 100%; }
figcaption { font-size: 0.8em; color: #333a48; margin-top: 4px; max-width: 440px; }
.tp { color: #0b5d1e; font-weight: 600; } .fp { color: #a11; font-weight: 600; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str, css_class: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{_e(css_class)}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


@dataclass
class GalleryItem:
    variant: str
    video: VideoEvents
    event: SpottedEvent
    status: str | None  # "TP" / "FP" against the ground truth, None without it


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def ap_table(inputs: ReportInputs, tolerances: Sequence[int]) -> tuple[str, dict]:
    """Per-class AP (%) by tolerance, variants side by side (Table III style)."""
    from uglspot.metrics.spotting import frame_map

    assert inputs.truth is not None and inputs.classes is not None
    variants = list(inputs.variants)
    results = {name: frame_map(inputs.truth, [v.as_predictions() for v in videos], inputs.classes, tolerances)
               for name, videos in inputs.variants.items()}
    counts = {c: sum(1 for v in inputs.truth for e in v.events if e.label == c) for c in inputs.classes}
    two = len(variants) == 2
    head1 = ['<th class="name" rowspan="2">class</th>', '<th rowspan="2">events</th>']
    head2 = []
    for tolerance in tolerances:
        span = len(variants) + (1 if two else 0)
        head1.append(f'<th colspan="{span}">AP @ δ={_e(tolerance)} frames</th>')
        head2 += [f"<th>{_e(name)}</th>" for name in variants]
        if two:
            head2.append("<th>Δ</th>")
    rows = [f"<tr>{''.join(head1)}</tr>", f"<tr>{''.join(head2)}</tr>"]

    def cells(values: tuple[float | None, ...], delta: float | None) -> str:
        present = [v for v in values if v is not None]
        best = max(present) if len(present) > 1 and present.count(max(present)) == 1 else None  # no bold on ties
        out = []
        for value in values:
            mark = ' class="best"' if best is not None and value == best else ""
            out.append(f"<td{mark}>{_fmt(value)}</td>")
        if two:
            if delta is None:
                out.append("<td>–</td>")
            else:
                diff = 100 * delta
                css = "gain" if diff > 0 else ("loss" if diff < 0 else "")
                out.append(f'<td class="{css}">{diff:+.1f}</td>')
        return "".join(out)

    *per_class, mean = ap_rows(results, inputs.classes, counts, tolerances)
    for row in per_class:
        values_by_tol = "".join(cells(row.values[t], row.deltas[t]) for t in tolerances)
        rows.append(f'<tr class="ap-row" data-class="{_e(row.label)}"><td class="name">{_e(row.label)}</td>'
                    f"<td>{row.events}</td>{values_by_tol}</tr>")
    mean_cells = "".join(cells(mean.values[t], mean.deltas[t]) for t in tolerances)
    rows.append(f'<tr class="mean"><td class="name">mAP</td><td>{mean.events}</td>{mean_cells}</tr>')
    summary = {name: {"mAP": {str(t): r.map[t] for t in tolerances},
                      "per_class": {str(t): dict(r.per_class[t]) for t in tolerances}}
               for name, r in results.items()}
    return f'<table id="ap-table">{"".join(rows)}</table>', summary


def _gallery_items(inputs: ReportInputs, per_class: int, tolerance: int) -> list[GalleryItem]:
    """The highest-scoring events of each class in each variant that carries
    entity attention, each moment once: an event within ``tolerance`` frames
    of one already shown in the same video (the neighbouring frame of a peak,
    or another class at the same frame) gives way to the next one."""
    truth = {v.video: v for v in inputs.truth} if inputs.truth is not None else None
    items = []
    for name, videos in inputs.variants.items():
        candidates = [(video, event) for video in videos for event in video.events if event.entities]
        labels = list(inputs.classes or sorted({e.label for _, e in candidates}))
        shown: dict[str, list[int]] = {}  # video id -> frames already in this variant's gallery
        for label in labels:
            ranked = sorted((c for c in candidates if c[1].label == label), key=lambda c: -c[1].score)
            chosen = []
            for video, event in ranked:
                if len(chosen) == per_class:
                    break
                if not any(abs(event.frame - f) <= tolerance for f in shown.get(video.video, [])):
                    shown.setdefault(video.video, []).append(event.frame)
                    chosen.append((video, event))
            for video, event in chosen:
                status = None
                if truth is not None:
                    gt = truth.get(video.video)
                    near = gt is not None and any(e.label == label and abs(e.frame - event.frame) <= tolerance
                                                  for e in gt.events)
                    status = "TP" if near else "FP"
                items.append(GalleryItem(name, video, event, status))
    return items


def _frame_reader(inputs: ReportInputs) -> Callable[[str, float, int], np.ndarray | None]:
    """Read one frame (H, W, 3) uint8 of a video at the events' frame rate;
    None for a video that is missing, refused or unreadable (the reason goes
    into ``inputs.video_notes`` for the caption: one bad video never stops
    the report)."""
    readers: dict[tuple[str, float], Any] = {}

    def read(video_id: str, fps: float, frame: int) -> np.ndarray | None:
        path = inputs.videos.get(video_id)
        if path is None:
            return None
        key = (video_id, fps)
        try:
            if key not in readers:
                from uglspot.video import VideoReader

                readers[key] = VideoReader(path, fps=fps if fps > 0 else None)
            clip = readers[key].read(frame, 1)  # (1, 3, H, W) uint8
        except (UserError, OSError, ValueError, RuntimeError) as exc:
            reason = brief(exc, 120) or type(exc).__name__
            inputs.video_notes[video_id] = f"video unreadable ({reason})"
            inputs.videos.pop(video_id, None)
            return None
        return clip[0].permute(1, 2, 0).numpy()

    return read


def _curves(inputs: ReportInputs, tolerances: Sequence[int]) -> dict[str, dict[tuple[str, int], PRCurve]]:
    """Each variant's precision-recall curve per (class, tolerance), from the
    matching behind the AP table."""
    return {name: pr_curves(match_frames(inputs.truth, [v.as_predictions() for v in videos], inputs.classes,
                                         tolerances))
            for name, videos in inputs.variants.items()}


def timeline_thresholds(inputs: ReportInputs, matched: dict[str, dict[tuple[str, int], PRCurve]] | None,
                        tolerance: int) -> tuple[dict[str, dict[str, dict[str, float]]], str]:
    """The score above which each variant's events of each class are drawn
    on each video's timeline (variant -> video -> class -> threshold), and
    the rule in a few words: with ground truth, the class's spotting
    threshold over all videos (``curves.spotting_threshold`` at
    ``tolerance``); without, ``plots.relative_thresholds`` of each video."""
    from uglspot.report import plots

    classes = list(inputs.classes or sorted({e.label for vs in inputs.variants.values() for v in vs
                                             for e in v.events}))
    if matched is None:
        return ({name: {v.video: plots.relative_thresholds(v, classes) for v in videos}
                 for name, videos in inputs.variants.items()},
                f"≥ {plots.TIMELINE_FRACTION:g} × the variant's top score in the video")
    thresholds = {}
    for name, videos in inputs.variants.items():
        per_class = {label: spotting_threshold(matched[name][(label, tolerance)],
                                               np.array([e.score for v in videos for e in v.events
                                                         if e.label == label]))
                     for label in classes}
        thresholds[name] = {v.video: per_class for v in videos}
    return thresholds, f"best F1 at δ={tolerance} over all videos, at most 2 events per true one"


def _pr_section(inputs: ReportInputs, matched: dict[str, dict[tuple[str, int], PRCurve]],
                tolerances: Sequence[int]) -> str:
    """A precision-recall figure per class, every variant and tolerance on it."""
    from uglspot.report import plots

    figures = []
    for label in inputs.classes:
        curves = {(name, t): matched[name][(label, t)] for name in inputs.variants for t in tolerances}
        png = plots.pr_figure(label, curves, list(inputs.variants))
        figures.append(f'<figure class="pr" data-class="{_e(label)}">{_img(png, f"PR curve {label}", "plot")}'
                       "</figure>")  # the class is the figure's title
    return ('<section id="pr"><h2>Precision–recall per class</h2>'
            f'<div class="grid">{"".join(figures)}</div></section>')


def _gallery_figures(inputs: ReportInputs, items: list[GalleryItem], truth_by_id: dict[str, Any]) -> list[str]:
    """The gallery's figures, grouped by variant."""
    from uglspot.report import plots

    gallery: list[str] = []
    read = _frame_reader(inputs) if items else None
    for name in inputs.variants:
        mine = [i for i in items if i.variant == name]
        if not mine:
            continue
        gallery.append(f"<h3>{_e(name)}</h3><div class=\"grid\">")
        for item in mine:
            frame = read(item.video.video, item.video.fps, item.event.frame) if read is not None else None
            if frame is not None:
                size = (frame.shape[1], frame.shape[0])
            else:
                gt = truth_by_id.get(item.video.video)
                size = (gt.width or 398, gt.height or 224) if gt is not None else (398, 224)
            png = plots.gallery_figure(frame, item.event, size)
            status = (f' · <span class="{item.status.lower()}">{_e(item.status)}</span>'
                      if item.status is not None else "")
            missing = f" · {_e(inputs.video_notes.get(item.video.video, 'video not found'))}" if frame is None else ""
            seconds = item.video.seconds(item.event)
            caption = (f"<b>{_e(item.event.label)}</b> score {item.event.score:.2f}{status}<br>"
                       f"{_e(item.video.video)} · frame {item.event.frame} · {seconds:.1f} s{missing}")
            gallery.append(f'<figure class="gallery-item" data-class="{_e(item.event.label)}">'
                           f'{_img(png, f"{item.event.label} at frame {item.event.frame}", "gallery")}'
                           f"<figcaption>{caption}</figcaption></figure>")
        gallery.append("</div>")
    return gallery


def build_report(inputs: ReportInputs, tolerances: Sequence[int] = (1, 2), gallery_per_class: int = 2,
                 max_timelines: int = 6, progress: Callable[[str], None] | None = None) -> tuple[str, dict]:
    """The report HTML and a summary (mAP and per-class AP per variant)."""
    from uglspot.report import plots

    def step(what: str) -> None:
        if progress is not None:
            progress(what)

    variants = list(inputs.variants)
    parts = [f"<h1>{_e(inputs.title)}</h1>"]
    n_videos = len({v.video for vs in inputs.variants.values() for v in vs})
    parts.append(f'<p class="meta">variants: {_e(", ".join(variants))} · videos: {n_videos} · '
                 f'classes: {len(inputs.classes or [])} · tolerances: {_e(", ".join(map(str, tolerances)))} frames'
                 "</p>")
    parts += [f'<p class="note run-note">{_e(note)}</p>' for note in inputs.notes]
    summary: dict = {}
    matched = None
    if inputs.truth is not None and inputs.classes is not None:
        step("AP table")
        table, summary = ap_table(inputs, tolerances)
        parts.append('<section id="ap"><h2>Average precision per class (%)</h2>'
                     '<p class="note">E2E-Spot frame mAP: a spotted event is correct within δ frames of a '
                     "ground-truth event of its class. Bold: the best variant in the row, when one is best.</p>"
                     f"{table}</section>")
        step("precision-recall curves")
        matched = _curves(inputs, tolerances)
        parts.append(_pr_section(inputs, matched, tolerances))
    else:
        parts.append('<p class="note">No ground truth given: no AP table or precision–recall curves '
                     "(pass --truth).</p>")

    step("timelines")
    truth_by_id = {v.video: v for v in inputs.truth} if inputs.truth is not None else {}
    ids = sorted({v.video for vs in inputs.variants.values() for v in vs})
    timeline_parts = []
    classes = inputs.classes or sorted({e.label for vs in inputs.variants.values() for v in vs for e in v.events})
    thresholds, rule = timeline_thresholds(inputs, matched, max(tolerances))
    for video_id in ids[:max_timelines]:
        per_variant = {name: next(v for v in videos if v.video == video_id)
                       for name, videos in inputs.variants.items() if any(v.video == video_id for v in videos)}
        first = next(iter(per_variant.values()))
        png = plots.timeline_figure(video_id, classes, truth_by_id.get(video_id), per_variant,
                                    first.num_frames, first.fps,
                                    {name: thresholds[name][video_id] for name in per_variant}, rule)
        timeline_parts.append(f'<figure class="timeline">{_img(png, f"timeline {video_id}", "plot")}</figure>')
    more = len(ids) - max_timelines
    note = f'<p class="note">{more} more videos not shown.</p>' if more > 0 else ""
    parts.append('<section id="timeline"><h2>Timeline: spotted scores against ground truth</h2>'
                 f'{"".join(timeline_parts)}{note}</section>')

    step("event gallery")
    items = _gallery_items(inputs, gallery_per_class, max(tolerances))
    gallery = ['<section id="gallery"><h2>Event gallery: what the attention looked at</h2>'
               '<p class="note">Each box is an entity the detector found; its line width and opacity are in '
               "proportion to the attention weight the model gave it for this event.</p>"]
    if not items:
        gallery.append('<p class="note">No spotted event carries entity attention (global-only variants).</p>')
    gallery += _gallery_figures(inputs, items, truth_by_id)
    gallery.append("</section>")
    parts += gallery

    document = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{_e(inputs.title)}</title><style>{_STYLE}</style></head><body>"
                + "\n".join(parts) + "</body></html>\n")
    return document, summary
