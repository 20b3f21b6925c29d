"""From per-frame class probabilities to events: window stitching, candidate
picking, NMS and Gaussian soft-NMS. Pure numpy over plain records.

Inference runs the model on overlapping windows; :func:`stitch_windows`
averages each frame's probabilities over the windows that cover it.
:func:`peaks_to_events` turns the stitched (T, K+1) array into candidate
events, and :func:`nms_events` (E2E-Spot's rule) or :func:`soft_nms_events`
thins candidates of one class that crowd around the same instant.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
from typing import Sequence

import numpy as np

from uglspot.data.labels import Event, VideoPredictions


def stitch_windows(num_frames: int, windows: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    """Average per-frame probabilities over the windows covering each frame.

    ``windows`` holds ``(start, probs)`` with ``probs`` of shape (T, K+1) for
    frames ``start .. start+T-1``; parts before frame 0 or from ``num_frames``
    on are clipped away. Returns (num_frames, K+1) float64: the sum over
    covering windows divided by the number of them; frames no window covers
    are all zeros.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames is negative ({num_frames})")
    if not windows:
        raise ValueError("no windows to stitch; the class count is unknown")
    width = None
    total = support = None
    for index, (start, probs) in enumerate(windows):
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or (width is not None and probs.shape[1] != width):
            raise ValueError(f"window #{index} has shape {probs.shape}; expected (T, {width or 'K+1'})")
        if total is None:
            width = probs.shape[1]
            total = np.zeros((num_frames, width))  # (N, K+1)
            support = np.zeros(num_frames)  # (N,)
        first, stop = max(int(start), 0), min(int(start) + probs.shape[0], num_frames)
        if first >= stop:
            continue
        total[first:stop] += probs[first - start:stop - start]
        support[first:stop] += 1
    out = np.zeros_like(total)
    covered = support > 0
    out[covered] = total[covered] / support[covered, None]
    return out


def peaks_to_events(probs: np.ndarray, classes: Sequence[str], threshold: float,
                    argmax_only: bool = False, frame_offset: int = 0) -> list[Event]:
    """Candidate events from per-frame probabilities (T, K+1), column 0 being
    "no event" and column k the class ``classes[k-1]``.

    By default every (frame, class) whose probability is at least
    ``threshold`` is a candidate (E2E-Spot's high-recall events). With
    ``argmax_only`` a frame gives at most one event, its most probable class,
    and only when that is not "no event". Events are ordered by frame, then
    class; ``frame_offset`` is added to every frame.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(classes) + 1:
        raise ValueError(f"probabilities have shape {probs.shape}; expected (T, {len(classes) + 1}) "
                         f"for {len(classes)} classes plus 'no event'")
    if argmax_only:
        best = probs.argmax(axis=1)  # (T,)
        frames = np.flatnonzero((best > 0) & (probs[np.arange(len(best)), best] >= threshold))
        columns = best[frames]
    else:
        frames, columns = np.nonzero(probs[:, 1:] >= threshold)  # row-major: by frame, then class
        columns = columns + 1
    scores = probs[frames, columns]
    return [Event(frame=f + frame_offset, label=classes[c - 1], score=s)
            for f, c, s in zip(frames.tolist(), columns.tolist(), scores.tolist())]


def _range_max(values: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """max(values[start[i]:stop[i]]) for every i, -inf for an empty range,
    through a sparse table (level j holds maxima of runs of 2**j)."""
    out = np.full(len(start), -np.inf)
    length = stop - start
    nonempty = length > 0
    if not nonempty.any():
        return out
    levels = [values.astype(np.float64)]
    span = 1
    while span * 2 <= int(length.max()):
        previous = levels[-1]
        levels.append(np.maximum(previous[:-span], previous[span:]))
        span *= 2
    table = np.full((len(levels), len(values)), -np.inf)  # (L, U)
    for level, row in enumerate(levels):
        table[level, :len(row)] = row
    first, stop, length = start[nonempty], stop[nonempty], length[nonempty]
    level = np.frexp(length.astype(np.float64))[1] - 1  # floor(log2(length)), exact for ints
    out[nonempty] = np.maximum(table[level, first], table[level, stop - (1 << level)])
    return out


def _scores(events: Sequence[Event]) -> np.ndarray:
    for index, event in enumerate(events):
        if event.score is None:
            raise ValueError(f"event #{index} ({event.label} at frame {event.frame}) has no score")
    return np.asarray([e.score for e in events], dtype=np.float64)


def _by_frame(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.frame)  # stable: input order within a frame


def nms_events(events: Sequence[Event], window: int) -> list[Event]:
    """E2E-Spot's NMS for the events of one video: an event survives unless an
    event of its class at another frame within ``±window`` frames has a
    strictly higher score.

    Ties: equal scores never suppress each other (both survive), and events
    of one class at the same frame never suppress each other. The survivors
    come back ordered by frame, input order within a frame.
    """
    if window < 0:
        raise ValueError(f"NMS window {window} is negative")
    scores = _scores(events)
    if not len(events):
        return []
    frames = np.asarray([e.frame for e in events], dtype=np.int64)
    label_ids: dict[str, int] = {}
    labels = np.asarray([label_ids.setdefault(e.label, len(label_ids)) for e in events])
    keep = np.ones(len(events), dtype=bool)
    for label in range(len(label_ids)):
        members = np.flatnonzero(labels == label)
        order = members[np.argsort(frames[members], kind="stable")]
        frame, score = frames[order], scores[order]
        unique_frames, run_start = np.unique(frame, return_index=True)
        frame_max = np.maximum.reduceat(score, run_start)  # best score at each distinct frame
        here = np.searchsorted(unique_frames, frame)
        first = np.searchsorted(unique_frames, frame - window, side="left")
        stop = np.searchsorted(unique_frames, frame + window, side="right")
        rival = np.maximum(_range_max(frame_max, first, here), _range_max(frame_max, here + 1, stop))
        keep[order[rival > score]] = False
    return _by_frame([e for e, k in zip(events, keep.tolist()) if k])


def nms_predictions(predictions: Sequence[VideoPredictions], window: int) -> list[VideoPredictions]:
    """:func:`nms_events` on every video."""
    return [VideoPredictions(video=p.video, events=nms_events(p.events, window)) for p in predictions]


def soft_nms_events(events: Sequence[Event], sigma: float, window: int,
                    threshold: float = 1e-3) -> list[Event]:
    """Gaussian soft-NMS for the events of one video, per class.

    Repeatedly keep the highest-scoring remaining event (ties: the earlier in
    the input) and decay every remaining event of its class within
    ``±window`` frames, ``Δ`` frames away, by the factor
    ``1 - exp(-Δ² / (2 σ²))``: an event at the same frame drops to 0, one
    σ away keeps 39 % of its score, one 2σ away 86 %. An event whose score
    falls below ``threshold`` is dropped. Returns the kept events with their
    decayed scores, ordered by frame.
    """
    if sigma <= 0:
        raise ValueError(f"soft-NMS sigma must be positive, got {sigma}")
    if window < 0:
        raise ValueError(f"soft-NMS window {window} is negative")
    scores = _scores(events).tolist()
    by_label: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        by_label.setdefault(event.label, []).append(index)
    kept: list[tuple[int, Event]] = []
    for members in by_label.values():
        members = sorted(members, key=lambda i: events[i].frame)
        frames = [events[i].frame for i in members]
        current = {i: scores[i] for i in members}
        done: set[int] = set()
        heap = [(-current[i], i) for i in members]
        heapq.heapify(heap)
        while heap:
            negative, index = heapq.heappop(heap)
            if index in done or -negative != current[index]:
                continue  # already kept, or a stale entry from before a decay
            if current[index] < threshold:
                break  # the best remaining is below the threshold, so all are
            done.add(index)
            kept.append((index, dataclasses.replace(events[index], score=current[index])))
            frame = events[index].frame
            for position in range(bisect.bisect_left(frames, frame - window),
                                  bisect.bisect_right(frames, frame + window)):
                other = members[position]
                if other in done:
                    continue
                delta = frames[position] - frame
                current[other] *= 1.0 - math.exp(-delta * delta / (2.0 * sigma * sigma))
                heapq.heappush(heap, (-current[other], other))
    return _by_frame([event for _, event in sorted(kept, key=lambda item: item[0])])
