"""Spotting frames as they arrive: the sliding-window inference of
:mod:`uglspot.engine.infer`, decided frame by frame with a bounded wait.

The model scores the same overlapping windows as offline (δ frames, δ/2
apart, the first at ``-pad``), each as soon as its last frame has arrived;
each frame's probabilities are the mean over the windows that cover it, and
an event survives per-class NMS unless a frame within ``±nms_window`` has a
strictly higher score of its class (``post.nms.nms_events``, the offline
rule).

A frame is **decided** once, and its events are final: no event is ever
withdrawn. It is decided as soon as it and its NMS neighbours are final
(every window covering them has been scored), or when ``lookahead`` frames
after it have arrived, whichever comes first; at the end of the stream every
remaining frame is decided with the end's zero-padded windows, as offline.
A frame decided at its deadline uses the windows scored by then; when none
covers it yet, one more window ending at the newest frame is scored (the
most future context the wait allows). So with a lookahead at least as long
as the windows and NMS need (:func:`full_lookahead`), every frame is decided
final and the events are exactly the offline ones.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from uglspot.data.events import EntityWeight
from uglspot.engine.infer import InferenceModel, most_attended, score_video
from uglspot.post.nms import nms_events, peaks_to_events

EntityFrame = dict[str, torch.Tensor]  # one frame's boxes (N, 4), cls (N,), score (N,), mask (N,) [, feat (N, De)]
# (frames uint8 (T, 3, H, W), entities of those frames or None) -> probs (T, K+1), attention (T, N) or None
ScoreWindow = Callable[[torch.Tensor, dict[str, torch.Tensor] | None], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class LiveEvent:
    frame: int
    label: str
    score: float
    entities: list[EntityWeight]  # most attended first
    arrival: float  # time.monotonic() when its frame arrived
    emitted: float  # time.monotonic() when it was decided
    decided_at: int  # the newest frame that had arrived when it was decided (-1 past the end)

    @property
    def latency(self) -> float:
        return self.emitted - self.arrival


def window_scorer(spotter: InferenceModel, amp_dtype: torch.dtype | None = None) -> ScoreWindow:
    """The model's probabilities (and entity attention) on one window of
    frames, through :func:`uglspot.engine.infer.score_video` (the offline
    normalisation, crop and precision) on a video that is that window."""
    s = spotter.settings

    def score(frames: torch.Tensor, entities: dict[str, torch.Tensor] | None):
        T = len(frames)
        scores = score_video(spotter.model, T, lambda start, count: frames[start:start + count],
                             None if entities is None else
                             (lambda start, count: {k: v[start:start + count] for k, v in entities.items()}),
                             T, pad=0, batch_size=1, crop=s.crop, amp_dtype=amp_dtype)
        return scores.probs, scores.attention

    return score


def full_lookahead(clip_len: int, pad: int, nms_window: int) -> int:
    """Frames after a frame after which it is always final: its last
    covering window ends at most ``clip_len - 1`` frames after it, and its
    NMS neighbours' ``nms_window`` frames later."""
    return clip_len - 1 + nms_window


class LiveSpotter:
    """Frame-by-frame spotting; :meth:`push` each frame in order, then
    :meth:`finish`. Both return the events decided, in frame order (class
    order within a frame). Memory is bounded by the window length, the
    lookahead and the NMS radius, whatever the stream's length."""

    def __init__(self, score: ScoreWindow, classes: Sequence[str], clip_len: int, pad: int, threshold: float,
                 nms_window: int, lookahead: int | None = None, class_thresholds: Mapping[str, float] | None = None,
                 vocabulary: Sequence[str] = (), top_entities: int = 3):
        self.score, self.classes = score, list(classes)
        self.clip_len, self.pad, self.stride = clip_len, pad, max(1, clip_len // 2)
        self.threshold, self.nms_window = threshold, nms_window
        self.lookahead = lookahead  # None: wait until final
        self.class_thresholds = dict(class_thresholds or {})
        self.vocabulary, self.top_entities = list(vocabulary), top_entities
        wait = full_lookahead(clip_len, pad, nms_window)  # no frame waits longer than this to be final
        keep = clip_len + (wait if lookahead is None else min(lookahead, wait)) + 2
        self.frames: collections.deque[torch.Tensor] = collections.deque(maxlen=keep)
        self.entities: collections.deque[EntityFrame | None] = collections.deque(maxlen=keep)
        self.arrivals: collections.deque[float] = collections.deque(maxlen=keep)
        self.arrived = 0  # frames pushed
        self.next_window = 0  # index k of the next regular window, starting at -pad + k * stride
        self.next_frame = 0  # the first undecided frame
        self.windows: list[tuple[int, np.ndarray, np.ndarray | None]] = []  # (start, probs, attention) scored
        self.decided: collections.deque[np.ndarray] = collections.deque(maxlen=max(nms_window, 1))
        self.num_frames: int | None = None  # set at the end
        self.windows_scored = 0

    # -- frames in ---------------------------------------------------------------------------------
    def push(self, pixels: torch.Tensor, arrival: float | None = None,
             entities: EntityFrame | None = None) -> list[LiveEvent]:
        """Add the next frame (uint8 (3, H, W)) and its entities; the events decided now."""
        self.frames.append(pixels)
        self.entities.append(entities)
        self.arrivals.append(time.monotonic() if arrival is None else arrival)
        self.arrived += 1
        while self._window_start(self.next_window) + self.clip_len <= self.arrived:
            self._score_window(self._window_start(self.next_window))
            self.next_window += 1
        return self._decide()

    def finish(self) -> list[LiveEvent]:
        """The stream ended: score the windows that reach past its end (zero
        frames there, as offline) and decide every remaining frame."""
        self.num_frames = self.arrived
        if self.arrived == 0:
            return []
        # offline windows: the first, then each next while the previous one ends before the last frame
        while self.next_window == 0 or self._window_start(self.next_window - 1) + self.clip_len < self.num_frames:
            self._score_window(self._window_start(self.next_window))
            self.next_window += 1
        return self._decide()

    # -- windows ------------------------------------------------------------------------------------
    def _window_start(self, k: int) -> int:
        return -self.pad + k * self.stride

    def _frame(self, index: int) -> torch.Tensor | None:
        offset = index - (self.arrived - len(self.frames))
        return self.frames[offset] if 0 <= offset < len(self.frames) else None

    def _score_window(self, start: int) -> None:
        template = self.frames[-1]
        frames = torch.stack([f if (f := self._frame(i)) is not None else torch.zeros_like(template)
                              for i in range(start, start + self.clip_len)])  # (T, 3, H, W)
        entities = self._entity_window(start)
        probs, attention = self.score(frames, entities)
        self.windows.append((start, probs, attention))
        self.windows_scored += 1

    def _entity_window(self, start: int) -> dict[str, torch.Tensor] | None:
        template = next((e for e in self.entities if e is not None), None)
        if template is None:
            return None
        parts = []
        for i in range(start, start + self.clip_len):
            offset = i - (self.arrived - len(self.entities))
            found = self.entities[offset] if 0 <= offset < len(self.entities) else None
            parts.append(found if found is not None else {k: torch.zeros_like(v) for k, v in template.items()})
        return {k: torch.stack([p[k] for p in parts]) for k in template}  # (T, N, ...)

    def _mean(self, frame: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The mean probabilities (K+1,) and attention (N,) of ``frame`` over the scored windows covering it."""
        probs = [p[frame - s] for s, p, _ in self.windows if s <= frame < s + len(p)]
        if not probs:
            return None, None
        attention = [a[frame - s] for s, p, a in self.windows if a is not None and s <= frame < s + len(p)]
        return (np.mean(np.asarray(probs, dtype=np.float64), axis=0),
                np.mean(np.asarray(attention, dtype=np.float64), axis=0) if attention else None)

    def _final_after(self, frame: int) -> int:
        """How many frames must have arrived for every window covering ``frame`` to be scored."""
        last = (frame + self.pad) // self.stride  # the last window starting at or before the frame
        return self._window_start(last) + self.clip_len

    # -- decisions ----------------------------------------------------------------------------------
    def _decide(self) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        ended = self.num_frames is not None
        while self.next_frame < self.arrived:
            f = self.next_frame
            final = ended or self._final_after(f + self.nms_window) <= self.arrived
            due = self.lookahead is not None and self.arrived - 1 >= f + self.lookahead
            if not (final or due):
                break
            if not final and self._mean(f)[0] is None:  # nothing covers it yet: the window the wait allows
                self._score_window(self.arrived - self.clip_len)
            events += self._events_at(f)
            self.next_frame += 1
            self._forget()
        return events

    def _events_at(self, f: int) -> list[LiveEvent]:
        probs, attention = self._mean(f)
        first = max(0, f - self.nms_window)
        rows = list(self.decided)[len(self.decided) - (f - first):] if f > first else []
        rows.append(probs)
        last = min(f + self.nms_window, self.arrived - 1)
        for j in range(f + 1, last + 1):
            later = self._mean(j)[0]
            rows.append(later if later is not None else np.zeros_like(probs))  # unseen: no rival
        self.decided.append(probs)
        block = np.stack(rows)  # (frames first .. last, K+1)
        candidates = nms_events(peaks_to_events(block, self.classes, self.threshold, frame_offset=first),
                                self.nms_window)
        now, newest = time.monotonic(), (self.arrived - 1 if self.num_frames is None else -1)
        out = []
        for event in candidates:
            if event.frame != f or event.score < self.class_thresholds.get(event.label, self.threshold):
                continue
            entities = []
            frame_entities = self.entities[f - (self.arrived - len(self.entities))]
            if attention is not None and frame_entities is not None and self.top_entities > 0:
                entities = most_attended({k: v[None] for k, v in frame_entities.items()}, attention,
                                         self.vocabulary, self.top_entities)
            out.append(LiveEvent(f, event.label, float(event.score), entities,
                                 self.arrivals[f - (self.arrived - len(self.arrivals))], now, newest))
        return out

    def _forget(self) -> None:
        """Drop the windows that end before every frame still to decide or to use as a neighbour."""
        keep_from = self.next_frame
        self.windows = [w for w in self.windows if w[0] + len(w[1]) > keep_from]


def replay(live: LiveSpotter, num_frames: int, read_frames: Callable[[int, int], torch.Tensor],
           read_entities: Callable[[int, int], dict[str, torch.Tensor]] | None = None,
           chunk: int = 64) -> list[LiveEvent]:
    """Push a recorded video's ``num_frames`` frames through ``live`` one
    by one, as a stream would bring them (without waiting), and finish: every
    event, in the order a live run emits them. ``read_frames`` and
    ``read_entities`` as in ``engine.infer`` (start, count)."""
    events: list[LiveEvent] = []
    for start in range(0, num_frames, chunk):
        count = min(chunk, num_frames - start)
        pixels = read_frames(start, count)  # (count, 3, H, W) uint8
        entities = read_entities(start, count) if read_entities is not None else None
        for i in range(count):
            events += live.push(pixels[i], None, None if entities is None else {k: v[i] for k, v in entities.items()})
    return events + live.finish()
