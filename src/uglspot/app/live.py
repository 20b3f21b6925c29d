"""Spot a live stream as it plays (``uglspot spot --live``).

Frames are decoded on a thread as they arrive (``uglspot.data.stream``)
and handed to :class:`uglspot.engine.live.LiveSpotter`, which scores each
window as soon as it is complete and decides each frame once; every event is
written at once as one JSON line and flushed. A stream that stalls, restarts
or breaks ends the run with what was decided, and one line saying why. For a
model that uses scene entities each frame is first run through the detector
(``uglspot.app.live_entities``) and waits for its entities.
"""

from __future__ import annotations

import json
import math
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

# How many decoded frames may wait for the model: a slower model holds the decoder back rather than
# letting memory grow (a live source then buffers or drops on its side).
QUEUE_FRAMES = 64


@dataclass
class LiveOutcome:
    """How a live run went."""

    source: str
    out: Path | None  # the events file; None: standard output
    frames: int = 0  # target frames spotted
    fps: float = 0.0
    events: int = 0
    latencies: list[float] = field(default_factory=list)  # per event: emitted - its frame's arrival, seconds
    windows: int = 0  # model windows scored
    error: str | None = None  # one line, when the stream did not end normally
    notes: list[str] = field(default_factory=list)  # which thresholds were used, for the user to read
    interrupted: bool = False  # Ctrl-C

    @property
    def summary(self) -> str:
        where = self.out if self.out is not None else "standard output"
        seconds = f" ({self.frames / self.fps:.1f} s of video)" if self.fps > 0 else ""
        line = f"live {self.source}: {self.frames} frames{seconds}, {self.events} events"
        line += f" -> {where}" if self.frames else ""
        if self.latencies:
            ordered = sorted(self.latencies)
            line += f"; latency median {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s"
        return line


def spot_live(source: str, model: str | Path, out: str | Path | None, stream: TextIO, *,
              videos: Sequence[Any] = (), lookahead: float | None = None, stall_timeout: float = 10.0,
              threshold: float | None = None, nms_window: int | None = None, device: str = "auto",
              entities: Any = None, detector: str | None = None, detector_model: str | None = None,
              prompt: Sequence[str] | None = None, detector_batch_size: int = 8, runtime: str | None = None,
              on_frame: Callable[[int], None] | None = None) -> LiveOutcome:
    """Spot the stream ``source`` (a URL FFmpeg reads, a named pipe, or
    ``-`` for standard input) with a model, writing each event as
    one JSON line to ``out`` (a new file) or to ``stream``, flushed at once.
    A model that uses scene entities needs ``detector`` (with
    ``detector_model``, ``prompt``, ``detector_batch_size`` as offline
    ``spot``): each frame is detected as it arrives
    (:mod:`uglspot.app.live_entities`); entity stores (``entities``) are refused.
    ``lookahead`` (seconds) bounds how long an event may wait for future
    frames; None waits until each frame is final, which gives the offline
    events. ``stall_timeout``: seconds without a new frame after which the
    stream counts as stalled. ``runtime``: PyTorch only (``onnx`` is
    refused). ``on_frame`` hears each frame index after it
    was spotted. Returns how it went: ``error`` says why a stream that did
    not end normally ended, ``interrupted`` that Ctrl-C stopped it (every
    final event was written before)."""
    from uglspot.app.live_entities import ENTITIES_REFUSED, live_detection
    from uglspot.app.spot import DetectorChoice, threshold_choice
    from uglspot.engine.infer import inference_dtype, load_spotter
    from uglspot.engine.live import LiveSpotter, window_scorer
    from uglspot.engine.runtime import pick_device
    from uglspot.errors import UserError

    if videos:
        raise UserError("--live spots one stream; drop the video files (spot them without --live)")
    if runtime == "onnx" or str(model).endswith(".onnx"):
        raise UserError("--live runs PyTorch models: give the run folder to --model and drop --runtime onnx")
    if entities is not None:
        raise UserError(ENTITIES_REFUSED)
    out = None if out is None else Path(out)
    if out is not None and (out.exists() or out.is_symlink()):
        raise UserError(f"--out {out}: already exists; --live writes a new events file: remove it or choose "
                        "another name")
    device_ = pick_device(device)
    spotter = load_spotter(model, device_)
    s = spotter.settings
    notes: list[str] = []
    detection = live_detection(spotter, DetectorChoice(detector, detector_model, prompt, detector_batch_size),
                               device_, notes)
    per_class, thresholds = threshold_choice(s, threshold)
    live = LiveSpotter(window_scorer(spotter, inference_dtype(s.precision, device_)), spotter.classes,
                       s.clip_len, s.pad, s.threshold if threshold is None else threshold,
                       s.nms_window if nms_window is None else nms_window, None, per_class,
                       detection.vocabulary if detection else (), s.entities_per_event)
    outcome = LiveOutcome(source, out, notes=[*notes, thresholds])
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        sink = out.open("x", encoding="utf-8")
    else:
        sink = stream
    frames = _decoder(source, s.fps, s.frame_size, stall_timeout, detection.second_size if detection else None)
    try:
        _run(frames, live, lookahead, stall_timeout, sink, outcome, on_frame, detection)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        frames.stop()
        if sink is not stream:
            sink.close()
            if outcome.frames == 0:  # the stream never brought a frame: leave no empty file behind
                out.unlink()
    outcome.windows = live.windows_scored
    return outcome


def _run(frames: _Decoder, live: Any, lookahead: float | None, stall_timeout: float, sink: TextIO,
         outcome: LiveOutcome, on_frame: Callable[[int], None] | None, detection: Any = None) -> None:
    """Push the frames to ``live`` as they come (with ``detection``: in
    batches of what has arrived, each frame after its entities) and write the
    events decided."""
    from uglspot.data.stream import StreamError

    batch_size = detection.batch_size if detection is not None else 1
    waiting: list[Any] = []  # frames that arrived, not yet pushed
    while True:
        try:  # a batch takes the frames already there; the stall wait starts once they are pushed
            kind, item = frames.get(stall_timeout) if not waiting else frames.get_nowait()
        except queue.Empty:
            if waiting:
                _push(waiting, live, lookahead, sink, outcome, on_frame, detection)
                waiting = []
                continue
            seen = f"after target frame {outcome.frames - 1}" if outcome.frames else "before the first frame"
            outcome.error = (f"--live {outcome.source}: the stream stalled: no frame for {stall_timeout:g} s "
                             f"{seen}; spotting ended there (--stall-timeout sets the wait)")
            break
        if kind == "frame":
            waiting.append(item)
            if len(waiting) >= batch_size:
                _push(waiting, live, lookahead, sink, outcome, on_frame, detection)
                waiting = []
            continue
        _push(waiting, live, lookahead, sink, outcome, on_frame, detection)  # the frames before the end
        waiting = []
        if kind == "end":
            break
        if not isinstance(item, StreamError) and outcome.frames == 0:
            raise item  # could not be opened: nothing was spotted
        outcome.error = str(item)
        break
    _write(live.finish(), sink, outcome)


def _push(items: list[Any], live: Any, lookahead: float | None, sink: TextIO, outcome: LiveOutcome,
          on_frame: Callable[[int], None] | None, detection: Any) -> None:
    """Push the stream frames ``items`` (with their entities, detected as one batch) and write the events."""
    import torch

    if not items:
        return
    entities = detection.entities([item.second for item in items]) if detection is not None else [None] * len(items)
    for item, frame_entities in zip(items, entities):
        if outcome.frames == 0:
            outcome.fps = item.fps
            if lookahead is not None:
                live.lookahead = max(0, math.ceil(lookahead * item.fps)) if item.fps > 0 else None
        _write(live.push(torch.from_numpy(item.pixels), item.arrival, frame_entities), sink, outcome)
        outcome.frames += 1
        if on_frame is not None:
            on_frame(item.index)


def _write(events: list[Any], sink: TextIO, outcome: LiveOutcome) -> None:
    for event in events:
        entities = [{"class": e.cls, "box": [round(v, 4) for v in e.box], "weight": round(e.weight, 4)}
                    for e in event.entities]
        line = {"frame": event.frame, "time": round(event.frame / outcome.fps, 3) if outcome.fps > 0 else None,
                "label": event.label, "score": round(event.score, 6),
                "entity": entities[0] if entities else None, "entities": entities,
                "wall_time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "latency": round(event.latency, 3)}
        sink.write(json.dumps(line) + "\n")
        sink.flush()
        outcome.events += 1
        outcome.latencies.append(event.latency)


class _Decoder:
    """The stream's frames, decoded on a thread into a bounded queue."""

    def __init__(self, source: str, fps: float | None, size: Any, read_timeout: float,
                 second_size: Callable[[int, int], Any] | None = None):
        self.queue: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._decode, args=(source, fps, size, read_timeout, second_size),
                                       name="uglspot-live-decoder", daemon=True)
        self.thread.start()

    def _decode(self, source: str, fps: float | None, size: Any, read_timeout: float,
                second_size: Callable[[int, int], Any] | None) -> None:
        from uglspot.data.stream import stream_frames

        try:
            for frame in stream_frames(source, fps, size, read_timeout, second_size=second_size):
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except Exception as exc:  # handed to the main thread, which says what happened
            self._put(("error", exc))

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> tuple[str, Any]:
        return self.queue.get(timeout=timeout)

    def get_nowait(self) -> tuple[str, Any]:
        return self.queue.get_nowait()

    def stop(self) -> None:
        """Let the thread end at its next frame (one blocked in a read ends with the process)."""
        self.stopped.set()


def _decoder(source: str, fps: float | None, size: Any, read_timeout: float,
             second_size: Callable[[int, int], Any] | None = None) -> _Decoder:
    return _Decoder(source, fps, size, read_timeout, second_size)


def latency_stats(path: str | Path) -> dict[str, float]:
    """Median and maximum ``latency`` (seconds) of an events file of ``--live``."""
    values = sorted(json.loads(line)["latency"] for line in Path(path).read_text().splitlines() if line.strip())
    if not values:
        return {"events": 0}
    return {"events": len(values), "median": values[len(values) // 2], "max": values[-1]}

