"""Sliding-window inference over a whole video.

Windows of δ frames overlap by δ/2 and start at ``-pad`` like training clips
(``uglspot.data.clips.inference_windows``); each frame's class probabilities
(and entity attention) are averaged over the windows that cover it
(``uglspot.post.nms.stitch_windows``); frames whose class probability passes
a low threshold become candidates, thinned per class by NMS; each event
carries the entities the model attended to most on its frame.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from uglspot.data.clips import inference_windows
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError
from uglspot.io import read_json

ReadFrames = Callable[[int, int], torch.Tensor]  # (start, count) -> uint8 (count, 3, H, W)
ReadEntities = Callable[[int, int], dict[str, torch.Tensor]]  # (start, count) -> boxes (T,N,4), cls, score, mask[, feat]


@dataclass
class SpottedEvent:
    frame: int
    label: str
    score: float
    entities: list[dict[str, Any]] = field(default_factory=list)  # {"box": [x1,y1,x2,y2], "class", "weight"}


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

    def to_json(self) -> dict[str, Any]:
        """The ``events.json`` record of one video."""
        return {"video": self.video, "fps": self.fps, "num_frames": self.num_frames,
                "events": [{"frame": e.frame, "time": round(e.frame / self.fps, 3) if self.fps > 0 else None,
                            "label": e.label, "score": round(e.score, 6), "entities": e.entities}
                           for e in self.events]}


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


def center_crop(frames: torch.Tensor, size: Sequence[int] | None) -> torch.Tensor:
    """(..., H, W) → the central (height, width) window; None keeps the frame."""
    if size is None:
        return frames
    H, W = frames.shape[-2:]
    ch, cw = min(size[0], H), min(size[1], W)
    top, left = (H - ch) // 2, (W - cw) // 2
    return frames[..., top:top + ch, left:left + cw]


def crop_entity_boxes(window: dict[str, torch.Tensor], frame_hw: tuple[int, int],
                      size: Sequence[int] | None) -> dict[str, torch.Tensor]:
    """Boxes of a centre-cropped frame (see :func:`center_crop`), entities outside masked."""
    if size is None:
        return window
    H, W = frame_hw
    ch, cw = min(size[0], H), min(size[1], W)
    top, left = (H - ch) // 2, (W - cw) // 2
    offset = torch.tensor([left / W, top / H, left / W, top / H])
    scale = torch.tensor([W / cw, H / ch, W / cw, H / ch])
    boxes = ((window["boxes"] - offset) * scale).clamp(0.0, 1.0)
    visible = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    return {**window, "boxes": boxes, "mask": window["mask"] & visible}


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

    device = next(model.parameters()).device
    focal = getattr(model.config, "loss", "focal") == "focal"
    reader = SequentialReader(read_frames)
    windows: list[tuple[int, np.ndarray]] = []
    attention_windows: list[tuple[int, np.ndarray]] = []
    model.eval()
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    with torch.inference_mode():
        for starts in _batches(inference_windows(num_frames, clip_len, pad), batch_size):
            raw = [reader(s, clip_len) for s in starts]
            frame_hw = (int(raw[0].shape[-2]), int(raw[0].shape[-1]))
            frames = torch.stack([center_crop(f, crop) for f in raw]).to(device)  # (B, T, 3, H, W) uint8
            entities = None
            if read_entities is not None:
                parts = [crop_entity_boxes(read_entities(s, clip_len), frame_hw, crop) for s in starts]
                entities = EntityBatch(
                    boxes=torch.stack([p["boxes"] for p in parts]), cls=torch.stack([p["cls"] for p in parts]),
                    score=torch.stack([p["score"] for p in parts]), mask=torch.stack([p["mask"] for p in parts]),
                    feat=torch.stack([p["feat"] for p in parts]) if "feat" in parts[0] else None,
                ).to(device)
            with autocast:
                output = model(model.normalize(frames), entities)
            logits = output.logits.float()
            probs = torch.sigmoid(logits) if focal else torch.softmax(logits, -1)  # (B, T, K+1)
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
) -> list[SpottedEvent]:
    """Candidates above ``threshold``, per-class NMS within ±``nms_window``
    frames, each with its frame's most-attended entities."""
    from uglspot.post.nms import nms_events, peaks_to_events

    events = nms_events(peaks_to_events(scores.probs, classes, threshold), nms_window)
    spotted = []
    for event in events:
        entities: list[dict[str, Any]] = []
        if scores.attention is not None and read_entities is not None and top_entities > 0:
            entities = most_attended(read_entities(event.frame, 1), scores.attention[event.frame],
                                     vocabulary, top_entities)
        spotted.append(SpottedEvent(frame=event.frame, label=event.label, score=float(event.score),
                                    entities=entities))
    return spotted


def most_attended(window: dict[str, torch.Tensor], weights: np.ndarray, vocabulary: Sequence[str],
                  top: int) -> list[dict[str, Any]]:
    """The ``top`` valid entities of one frame by attention weight (box, class name, weight)."""
    mask = window["mask"][0].numpy()
    boxes = window["boxes"][0].numpy()
    cls = window["cls"][0].numpy()
    slots = min(len(mask), len(weights))
    order = [i for i in np.argsort(-weights[:slots], kind="stable") if mask[i] and weights[i] > 0][:top]
    return [{"box": [round(float(v), 4) for v in boxes[i]],
             "class": vocabulary[cls[i]] if 0 <= cls[i] < len(vocabulary) else str(int(cls[i])),
             "weight": round(float(weights[i]), 4)} for i in order]


@dataclass
class Spotter:
    """A trained model with what inference needs besides the weights (``inference.json``)."""
    model: torch.nn.Module
    settings: dict[str, Any]
    directory: Path

    @property
    def classes(self) -> list[str]:
        return list(self.settings["classes"])


def model_directory(path: str | Path) -> Path:
    """The checkpoint directory of a run directory (best, else last) or a model directory itself."""
    from uglspot.engine.state import resolve

    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    checkpoints = path / "checkpoints"
    for name in ("best", "last"):
        found = resolve(checkpoints, name, missing_ok=True)
        if found is not None:
            return found
    raise UserError(f"{path}: neither a model directory (config.json + model.safetensors) nor a run directory "
                    "with checkpoints; pass the run directory of `uglspot train` or one of its checkpoints")


def load_spotter(path: str | Path, device: torch.device | str = "cpu") -> Spotter:
    from uglspot.engine.checkpoint import check_inference_settings, load_model

    directory = model_directory(path)
    settings_path = directory / "inference.json"
    if not settings_path.is_file():
        raise UserError(f"{directory}: no inference.json (classes, frame rate, window); "
                        "use a checkpoint written by `uglspot train`")
    settings = check_inference_settings(read_json(settings_path), settings_path)
    model = load_model(directory, map_location="cpu").to(device).eval()
    return Spotter(model=model, settings=settings, directory=directory)


def spot_video(
    spotter: Spotter, video: str, num_frames: int, fps: float, read_frames: ReadFrames,
    read_entities: ReadEntities | None, vocabulary: Sequence[str] = (), amp_dtype: torch.dtype | None = None,
    threshold: float | None = None, nms_window: int | None = None, progress: Callable[[int], None] | None = None,
) -> SpotResult:
    """Score one whole video and pick its events."""
    s = spotter.settings
    scores = score_video(spotter.model, num_frames, read_frames, read_entities, s["clip_len"], s["pad"],
                         s["batch_size"], s["crop"], amp_dtype, progress)
    events = spot_events(scores, spotter.classes, s["threshold"] if threshold is None else threshold,
                         s["nms_window"] if nms_window is None else nms_window, read_entities, vocabulary,
                         s["entities_per_event"])
    return SpotResult(video=video, fps=fps, num_frames=num_frames, scores=scores, events=events)
