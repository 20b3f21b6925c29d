"""Sliding-window inference: the one loop that spots a list of videos.

Windows of δ frames overlap by δ/2 and start at ``-pad`` like training clips
(``uglspot.data.clips.inference_windows``); each frame's class probabilities
(and entity attention) are averaged over the windows that cover it
(``uglspot.post.nms.stitch_windows``); frames whose class probability passes
a low threshold become candidates, thinned per class by NMS; each event
carries the entities the model attended to most on its frame.

:func:`spot_videos` is the loop every path uses: validation during
training, ``uglspot predict``, ``uglspot spot`` and ``uglspot demo``. What
inference needs besides the weights is an :class:`InferenceSettings`, saved
as ``inference.json`` beside the model's ``config.json``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from uglspot.config import from_dict, to_dict
from uglspot.data.augment import crop_clips, normalize
from uglspot.data.clips import inference_windows
from uglspot.data.dataset import EntityWindows, FrameSource
from uglspot.data.events import EntityWeight, SpottedEvent, VideoEvents
from uglspot.data.labels import Video
from uglspot.engine.config import RunConfig
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError
from uglspot.io import read_json, write_json_atomic

INFERENCE_JSON = "inference.json"

ReadFrames = Callable[[int, int], torch.Tensor]  # (start, count) -> uint8 (count, 3, H, W)
ReadEntities = Callable[[int, int], dict[str, torch.Tensor]]  # (start, count) -> boxes (T,N,4), cls, score, mask[, feat]


@dataclass
class InferenceSettings:
    """What inference needs besides the weights; ``inference.json`` beside
    the model's ``config.json``, written by training."""

    classes: list[str]
    clip_len: int  # frames per window
    dataset: str = ""
    fps: float | None = None  # decoding rate; None: each video's native rate
    height: int | None = None  # decoded frame height
    width: int | None = None  # decoded frame width; None keeps the aspect ratio
    crop: list[int] | None = None  # [height, width] of the centre crop, as training's random crop
    pad: int = 5  # the first window starts at -pad
    threshold: float = 0.01  # lowest class probability of a candidate event
    nms_window: int = 1  # per-class NMS radius in frames
    batch_size: int = 4  # windows per forward pass
    entities_per_event: int = 3  # most-attended entities listed with each event
    entity_slots: int = 50  # entity slots per frame
    # train.amp of the run (auto, off, bf16, fp16): inference runs at the precision validation used
    # (``inference_dtype``); "auto" for models saved before it was recorded
    precision: str = "auto"
    entities: dict[str, Any] | None = None  # detector settings of the training stores (uglspot spot --detector)
    # Per class, the score cut-off with the best F1 on the validation videos at ±threshold_tolerance frames
    # (engine.evaluate.class_thresholds); what `spot` keeps by default. None: the run had no validation.
    class_thresholds: dict[str, float] | None = None
    threshold_tolerance: int | None = None
    # Per class, the head it reads ("global", "fused": the entity side, "entity"), chosen on the validation
    # videos (engine.head_choice; model option head_choice: validation). None: the gate's pick.
    head_choice: dict[str, str] | None = None

    @property
    def frame_size(self) -> int | tuple[int, int] | None:
        """The decoding size: (width, height), or the height alone."""
        return (self.width, self.height) if self.width and self.height else self.height


def inference_settings(config: RunConfig, classes: Sequence[str], videos: Sequence[Video]) -> InferenceSettings:
    """The settings a run's checkpoints carry: its classes, decoding, windows and NMS."""
    rates = [v.fps for v in videos if v.fps > 0]
    fps = config.data.fps or (float(np.median(rates)) if rates else None)
    return InferenceSettings(
        dataset=config.dataset, classes=list(classes), fps=fps, height=config.data.height, width=config.data.width,
        crop=config.augment.crop, clip_len=config.data.clip_len, pad=config.data.pad,
        threshold=config.infer.threshold, nms_window=config.infer.nms_window, batch_size=config.infer.batch_size,
        entities_per_event=config.infer.entities_per_event, entity_slots=config.data.entity_slots,
        precision=config.train.amp)


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The one rule for inference precision (validation, predict, spot, the
    demo): the autocast dtype training used for ``precision`` (its
    ``train.amp``) on ``device``, or None for fp32. A precision this device
    does not have runs in fp32 rather than failing (an fp16 model on a CPU,
    a bf16 one on a CPU without bf16); a model trained with ``off`` is never
    predicted in reduced precision."""
    from uglspot.engine.runtime import amp_mode, cpu_has_bf16

    if precision == "off":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if precision == "bf16" and device.type == "cpu" and cpu_has_bf16() else None
    return amp_mode(precision, device)[0]


def read_inference_settings(directory: Path) -> InferenceSettings:
    """The ``inference.json`` of a model directory."""
    path = Path(directory) / INFERENCE_JSON
    if not path.is_file():
        raise UserError(f"{directory}: no {INFERENCE_JSON} (classes, frame rate, window); "
                        "use a checkpoint written by `uglspot train`")
    from uglspot.engine.model_folder import check_inference_settings

    return from_dict(InferenceSettings, check_inference_settings(read_json(path), path), str(path))


def write_inference_settings(directory: Path, settings: InferenceSettings) -> None:
    write_json_atomic(Path(directory) / INFERENCE_JSON, to_dict(settings))


@dataclass
class VideoScores:
    probs: np.ndarray  # (num_frames, K+1) per-frame class probabilities
    attention: np.ndarray | None  # (num_frames, N) averaged entity attention, None without entities


@dataclass
class SpotResult:
    video: str
    fps: float
    num_frames: int
    scores: VideoScores
    events: list[SpottedEvent]
    source: Video | None = None  # the video record spotted (with its true events, if any): set by spot_videos

    @property
    def record(self) -> VideoEvents:
        return VideoEvents(self.video, self.fps, self.num_frames, self.events)

    def to_json(self) -> dict[str, Any]:
        """The ``events.json`` record of one video."""
        return self.record.to_json()


class SequentialReader:
    """Reads overlapping, increasing windows, decoding each frame once:
    the part a window shares with the previous one is reused."""

    def __init__(self, read: ReadFrames):
        self.read = read
        self.start = 0
        self.frames: torch.Tensor | None = None

    def __call__(self, start: int, count: int) -> torch.Tensor:
        held = self.frames
        if held is not None and self.start <= start < self.start + len(held):
            keep = held[start - self.start:start - self.start + count]
            missing = count - len(keep)
            out = keep if missing == 0 else torch.cat([keep, self.read(self.start + len(held), missing)])
        else:
            out = self.read(start, count)
        self.start, self.frames = start, out
        return out


def center_crop(frames: torch.Tensor, entities: EntityBatch | None,
                size: Sequence[int] | None) -> tuple[torch.Tensor, EntityBatch | None]:
    """frames (B, T, 3, H, W) → the central (height, width) window of every
    clip, boxes re-expressed in it (training's crop, at the centre); None keeps
    the frame."""
    if size is None:
        return frames, entities
    B, T, C, H, W = frames.shape
    ch, cw = min(size[0], H), min(size[1], W)
    return crop_clips(frames, entities, (ch, cw), np.full(B, (H - ch) // 2), np.full(B, (W - cw) // 2))


def _batches(starts: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(starts), size):
        yield starts[i:i + size]


def score_video(
    model: torch.nn.Module, num_frames: int, read_frames: ReadFrames, read_entities: ReadEntities | None,
    clip_len: int, pad: int = 5, batch_size: int = 4, crop: Sequence[int] | None = None,
    amp_dtype: torch.dtype | None = None, progress: Callable[[int], None] | None = None,
) -> VideoScores:
    """Per-frame probabilities of a whole video from overlapping windows."""
    from uglspot.post.nms import stitch_windows

    device = model.device if hasattr(model, "device") else next(model.parameters()).device  # ONNX Runtime: CPU
    mean, std = tuple(model.config.pixel_mean), tuple(model.config.pixel_std)
    reader = SequentialReader(read_frames)
    windows: list[tuple[int, np.ndarray]] = []
    attention_windows: list[tuple[int, np.ndarray]] = []
    model.eval()
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    with torch.inference_mode():
        for starts in _batches(inference_windows(num_frames, clip_len, pad), batch_size):
            frames = torch.stack([reader(s, clip_len) for s in starts])  # (B, T, 3, H, W) uint8
            entities = None
            if read_entities is not None:
                parts = [read_entities(s, clip_len) for s in starts]
                entities = EntityBatch(
                    boxes=torch.stack([p["boxes"] for p in parts]), cls=torch.stack([p["cls"] for p in parts]),
                    score=torch.stack([p["score"] for p in parts]), mask=torch.stack([p["mask"] for p in parts]),
                    feat=torch.stack([p["feat"] for p in parts]) if "feat" in parts[0] else None,
                )
            frames, entities = center_crop(frames, entities, crop)
            frames = normalize(frames.to(device).float() / 255.0, mean, std)
            entities = entities.to(device) if entities is not None else None
            with autocast:
                output = model(frames, entities)
            probs = model.scores(output)  # (B, T, K+1)
            for start, window_probs in zip(starts, probs.cpu().numpy()):
                windows.append((start, window_probs))
            if output.attention is not None:
                for start, weights in zip(starts, output.attention.float().cpu().numpy()):
                    attention_windows.append((start, weights))
            if progress is not None:
                progress(len(starts))
    probs_all = stitch_windows(num_frames, windows).astype(np.float32)
    attention = (stitch_windows(num_frames, attention_windows).astype(np.float32)
                 if attention_windows else None)
    return VideoScores(probs=probs_all, attention=attention)


def spot_events(
    scores: VideoScores, classes: Sequence[str], threshold: float, nms_window: int,
    read_entities: ReadEntities | None = None, vocabulary: Sequence[str] = (), top_entities: int = 3,
    class_thresholds: Mapping[str, float] | None = None,
) -> list[SpottedEvent]:
    """Candidates above ``threshold``, per-class NMS within ±``nms_window``
    frames, then (with ``class_thresholds``) only the events at or above
    their class's threshold; each with its frame's most-attended entities."""
    from uglspot.post.nms import nms_events, peaks_to_events

    events = nms_events(peaks_to_events(scores.probs, classes, threshold), nms_window)
    if class_thresholds:  # after NMS, so the kept events are those the thresholds were chosen on
        events = [e for e in events if e.score >= class_thresholds.get(e.label, threshold)]
    spotted = []
    for event in events:
        entities: list[EntityWeight] = []
        if scores.attention is not None and read_entities is not None and top_entities > 0:
            entities = most_attended(read_entities(event.frame, 1), scores.attention[event.frame],
                                     vocabulary, top_entities)
        spotted.append(SpottedEvent(frame=event.frame, label=event.label, score=float(event.score),
                                    entities=entities))
    return spotted


def most_attended(window: dict[str, torch.Tensor], weights: np.ndarray, vocabulary: Sequence[str],
                  top: int) -> list[EntityWeight]:
    """The ``top`` valid entities of one frame by attention weight."""
    mask = window["mask"][0].numpy()
    boxes = window["boxes"][0].numpy()
    cls = window["cls"][0].numpy()
    slots = min(len(mask), len(weights))
    order = [i for i in np.argsort(-weights[:slots], kind="stable") if mask[i] and weights[i] > 0][:top]
    return [EntityWeight(tuple(float(v) for v in boxes[i]),
                         vocabulary[cls[i]] if 0 <= cls[i] < len(vocabulary) else str(int(cls[i])), float(weights[i]))
            for i in order]


@dataclass
class InferenceModel:
    """A trained network (a ``UGLSpotter``, or an ONNX graph) with what inference needs besides the
    weights: its ``inference.json`` settings and the folder it was loaded from."""
    model: torch.nn.Module
    settings: InferenceSettings
    directory: Path | None = None  # where it was loaded from

    @property
    def classes(self) -> list[str]:
        return list(self.settings.classes)


def model_directory(path: str | Path) -> Path:
    """The checkpoint directory of a run directory (best, else last) or a model directory itself."""
    from uglspot.engine.state import resolve

    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    checkpoints = path / "checkpoints"
    for name in ("best", "last"):
        if (checkpoints / f"{name}.json").is_file():  # a pointer whose folder is gone is an error, not a fallback
            return resolve(checkpoints, name)
    raise UserError(f"{path}: neither a model directory (config.json + model.safetensors) nor a run directory "
                    "with checkpoints; pass the run directory of `uglspot train` or one of its checkpoints")


def load_spotter(path: str | Path, device: torch.device | str = "cpu") -> InferenceModel:
    from uglspot.engine.head_choice import apply_head_choice
    from uglspot.engine.model_folder import load_model

    directory = model_directory(path)
    settings = read_inference_settings(directory)
    model = load_model(directory, map_location="cpu").to(device).eval()
    apply_head_choice(model, settings.head_choice, settings.classes, directory / INFERENCE_JSON)
    return InferenceModel(model=model, settings=settings, directory=directory)


def spot_video(
    spotter: InferenceModel, video: str, num_frames: int, fps: float, read_frames: ReadFrames,
    read_entities: ReadEntities | None, vocabulary: Sequence[str] = (), amp_dtype: torch.dtype | None = None,
    threshold: float | None = None, nms_window: int | None = None, progress: Callable[[int], None] | None = None,
    explain: bool = True, class_thresholds: Mapping[str, float] | None = None,
) -> SpotResult:
    """Score one whole video and pick its events (``spot_events``); with
    ``explain``, each event lists the entities the model attended to most."""
    s = spotter.settings
    scores = score_video(spotter.model, num_frames, read_frames, read_entities, s.clip_len, s.pad,
                         s.batch_size, s.crop, amp_dtype, progress)
    events = spot_events(scores, spotter.classes, s.threshold if threshold is None else threshold,
                         s.nms_window if nms_window is None else nms_window, read_entities, vocabulary,
                         s.entities_per_event if explain else 0, class_thresholds)
    return SpotResult(video=video, fps=fps, num_frames=num_frames, scores=scores, events=events)


# What a single bad video raises; the loop lists it and goes on when asked to.
VIDEO_ERRORS = (UserError, OSError, RuntimeError, ValueError)


def spot_videos(
    spotter: InferenceModel, videos: Sequence[Video], frames: FrameSource, entities: EntityWindows | None = None,
    amp_dtype: torch.dtype | None = None, threshold: float | None = None, nms_window: int | None = None,
    desc: str | None = None, failures: list[tuple[str, str]] | None = None, explain: bool = True,
    class_thresholds: Mapping[str, float] | None = None,
) -> Iterator[SpotResult]:
    """Spot every video of ``videos`` (id, frame count and rate of each) with
    frames from ``frames`` and, for a model that uses them, entities from
    ``entities``; yields one result per video, in order. ``desc`` shows a
    progress bar over all windows. With ``failures``, a video that cannot be
    read is listed there as (video id, first line of the error) and skipped;
    otherwise its error is raised."""
    from uglspot.progress import progress_bar

    s = spotter.settings
    total = sum(len(inference_windows(v.num_frames, s.clip_len, s.pad)) for v in videos)
    with progress_bar(desc or "", total, "window", disable=desc is None) as bar:
        for video in videos:
            try:
                read_entities = None if entities is None else (
                    lambda start, count, vid=video.video: entities.window(vid, start, count))
                result = spot_video(spotter, video.video, video.num_frames, video.fps,
                                    lambda start, count, vid=video.video: frames.read(vid, start, count),
                                    read_entities, entities.vocabulary(video.video) if entities else (), amp_dtype,
                                    threshold, nms_window, bar.update, explain, class_thresholds)
            except VIDEO_ERRORS as exc:
                if failures is None:
                    raise
                failures.append((video.video, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
                continue
            result.source = video
            yield result


def validation_predictions(spotter: InferenceModel, videos: Sequence[Video], frames: FrameSource,
                           entities: EntityWindows | None, device: torch.device,
                           desc: str | None = None) -> list[Any]:
    """Each video's predictions as a validation scores them: no explanations,
    at the precision ``predict`` and ``spot`` will run the model in."""
    precision = inference_dtype(spotter.settings.precision, device)
    return [result.record.as_predictions()
            for result in spot_videos(spotter, videos, frames, entities, precision, explain=False, desc=desc)]
