"""On-disk entity store: the detections of one video by one detector setup.

One safetensors file per (video, detector, model, prompt, thresholds, fps,
size) — the ``StoreKey``. Detections are kept as flat arrays over all boxes
of the video, each frame's boxes contiguous and sorted by score (highest
first), plus per-frame offsets::

    offsets (T + 1,) int64    boxes of frame t are rows offsets[t] .. offsets[t+1]-1
    boxes   (M, 4)  float32   xyxy in [0, 1] of the frame
    cls     (M,)    int64     index into the prompt vocabulary
    score   (M,)    float32
    feat    (M, De) float16   optional detector feature per box (returned as float32)

The safetensors header metadata holds the key, the source video's size and
modification time, and what made the store (uglspot version, time). A window
reads only the offsets and the rows of its frames through a memory map, so a
100-frame clip never loads the whole video. Writes go to a temporary file that
is renamed into place: a killed run never leaves a store that looks complete.
The metadata also holds a checksum of the arrays (``EntityStore.verify``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uglspot.errors import UserError, brief
from uglspot.io import check_metadata, load_tensors, save_tensors

STORE_VERSION = 1
FEAT_DTYPE = np.float16  # how a store keeps box features (read back as float32)


@dataclass(frozen=True)
class StoreKey:
    """Everything that decides a store's content. Two stores with equal keys
    are interchangeable; opening a store with a different key is an error."""

    video: str
    detector: str
    model: str
    prompt: tuple[str, ...]
    box_threshold: float
    text_threshold: float
    max_per_frame: int
    fps: float | None
    size: tuple[int, int] | None  # detector input (shortest edge, longest edge); None = native
    source_bytes: int | None = None  # size of the source video file
    source_mtime: float | None = None  # modification time of the source video file
    features: str | None = None  # what ``feat`` is: roi | query (real detectors), simulated; None = unrecorded

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @staticmethod
    def from_json(data: dict[str, Any], where: str = "store key") -> "StoreKey":
        from uglspot.config import from_dict

        if "features" not in data:  # a store written before the kind was recorded
            data = {**data, "features": LEGACY_FEATURES.get(data.get("detector"))}
        return from_dict(StoreKey, data, where)


# The fields of a ``StoreKey`` that say how entities were detected (what
# ``uglspot.entities.pipeline.store_key`` takes from a ``DetectorConfig`` and
# ``config_for_stores`` gives back; a trained model keeps them in its
# ``inference.json``), and those that say which video at which rate.
DETECTION_FIELDS = ("detector", "model", "prompt", "box_threshold", "text_threshold", "max_per_frame", "size",
                    "features")
VIDEO_FIELDS = ("video", "fps", "source_bytes", "source_mtime")

# The feature kind of stores whose key predates ``StoreKey.features``: the
# transformers backends then always stored their query embedding; GLIP files
# hold RoI features; ``uglspot synth``'s simulated detector, class directions
# plus noise.
LEGACY_FEATURES = {"grounding-dino": "query", "owlv2": "query", "glip-import": "roi", "synthetic": "simulated"}


def _key(key: StoreKey | dict) -> StoreKey:
    return key if isinstance(key, StoreKey) else StoreKey.from_json(dict(key))


def key_differences(stored: StoreKey, expected: StoreKey) -> list[str]:
    """``field: stored != expected`` for each field that differs."""
    a, b = stored.to_json(), expected.to_json()
    return [f"{name}: {a[name]!r} != {b[name]!r}" for name in a if a[name] != b[name]]


class EntityStore:
    """Read access to one entity store file (see the module docstring)."""

    def __init__(self, path: Path, key: StoreKey, header: dict[str, Any]):
        self.path = path
        self.key = key
        self.header = header
        self.num_frames: int = header["num_frames"]
        self.feat_dim: int | None = header["feat_dim"]
        self.vocabulary: list[str] = list(key.prompt)
        self._handle = None

    @staticmethod
    def write(path: str | Path, key: StoreKey | dict, num_frames: int,
              detections: list[dict[str, np.ndarray]], extra: dict[str, Any] | None = None) -> Path:
        """Write a store atomically. ``detections`` has one dict per target
        frame with ``boxes (n,4)``, ``cls (n,)``, ``score (n,)`` and optionally
        ``feat (n,De)`` and ``truth (n,)`` (a ground-truth flag per box that a
        synthetic source knows, kept for diagnostics: see ``truth_window``);
        frames past ``len(detections)`` are empty."""
        from uglspot import __version__

        key = _key(key)
        path = Path(path)
        if len(detections) > num_frames:
            raise UserError(f"{path}: {len(detections)} frames of detections for a video of {num_frames} frames")
        counts = np.zeros(num_frames, dtype=np.int64)
        parts: dict[str, list[np.ndarray]] = {"boxes": [], "cls": [], "score": [], "feat": [], "truth": []}
        with_truth = bool(detections) and all("truth" in d for d in detections)
        with_feat = [d.get("feat") is not None for d in detections if len(d["score"])]
        if with_feat and not (all(with_feat) or not any(with_feat)):
            raise UserError(f"{path}: some frames have box features and some do not")
        feat_dim = None
        for t, det in enumerate(detections):
            score = np.asarray(det["score"], dtype=np.float32).reshape(-1)
            n = len(score)
            boxes = np.asarray(det["boxes"], dtype=np.float32).reshape(n, 4)
            cls = np.asarray(det["cls"], dtype=np.int64).reshape(n)
            if n and (cls.min() < 0 or cls.max() >= len(key.prompt)):
                raise UserError(f"{path}: frame {t} has class index {int(cls.max())} outside the "
                                f"vocabulary of {len(key.prompt)} names")
            order = np.argsort(-score, kind="stable")
            counts[t] = n
            parts["boxes"].append(boxes[order])
            parts["cls"].append(cls[order])
            parts["score"].append(score[order])
            if with_truth:
                parts["truth"].append(np.asarray(det["truth"], dtype=np.uint8).reshape(n)[order])
            if n and det.get("feat") is not None:
                feat = np.asarray(det["feat"], dtype=np.float32).reshape(n, -1)
                if feat_dim is not None and feat.shape[1] != feat_dim:
                    raise UserError(f"{path}: frame {t} has {feat.shape[1]}-d features, earlier frames {feat_dim}-d")
                feat_dim = feat.shape[1]
                parts["feat"].append(feat[order].astype(FEAT_DTYPE))
        offsets = np.zeros(num_frames + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        tensors = {
            "offsets": offsets,
            "boxes": np.concatenate(parts["boxes"]) if parts["boxes"] else np.zeros((0, 4), np.float32),
            "cls": np.concatenate(parts["cls"]) if parts["cls"] else np.zeros(0, np.int64),
            "score": np.concatenate(parts["score"]) if parts["score"] else np.zeros(0, np.float32),
        }
        if feat_dim is not None:
            tensors["feat"] = np.concatenate(parts["feat"])
        if with_truth:
            tensors["truth"] = np.concatenate(parts["truth"]) if parts["truth"] else np.zeros(0, np.uint8)
        header = {
            "version": STORE_VERSION, "key": key.to_json(), "num_frames": num_frames, "feat_dim": feat_dim,
            "num_boxes": int(offsets[-1]), "made_by": f"uglspot {__version__}",
            "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "extra": extra or {},
        }
        save_tensors(tensors, path, metadata={"uglspot_entity_store": json.dumps(header)})
        return path

    @staticmethod
    def verify(path: str | Path) -> None:
        """Read the whole store and check it against the checksum written with
        it; a damaged store is one line naming the file."""
        load_tensors(path, "entity store", "delete it and run `uglspot detect` again", framework="numpy")

    @staticmethod
    def read_header(path: str | Path) -> dict[str, Any]:
        """The header of a store file (cheap: reads only the safetensors header)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: entity store not found; create it with `uglspot detect`")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable entity store ({exc}); delete it and run "
                            "`uglspot detect` again") from None
        if "uglspot_entity_store" not in metadata:
            raise UserError(f"{path}: a safetensors file but not an uglspot entity store")
        check_metadata(path, metadata, "entity store", "delete it and run `uglspot detect` again")
        try:
            header = json.loads(metadata["uglspot_entity_store"])
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or not isinstance(header.get("key"), dict) \
                or not isinstance(header.get("num_frames"), int):
            raise UserError(f"{path}: damaged entity store header; delete it and run `uglspot detect` again")
        if header.get("version") != STORE_VERSION:
            raise UserError(f"{path}: entity store version {header.get('version')}, this uglspot reads "
                            f"{STORE_VERSION}; run `uglspot detect` again")
        return header

    @staticmethod
    def open(path: str | Path, expected_key: StoreKey | dict | None = None,
             allow_stale: bool = False) -> "EntityStore":
        """Open a store; if ``expected_key`` differs from the stored key it is an
        error naming the differing fields, unless ``allow_stale``."""
        path = Path(path)
        header = EntityStore.read_header(path)
        key = StoreKey.from_json(header["key"], f"{path}: key")
        if expected_key is not None and not allow_stale:
            differences = key_differences(key, _key(expected_key))
            if differences:
                raise UserError(f"{path}: entity store was made with other settings ({'; '.join(differences)}); "
                                "run `uglspot detect` again or pass --allow-stale to use it anyway")
        return EntityStore(path, key, header)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"] = None  # memory maps are reopened in each worker
        return state

    def _tensors(self) -> Any:
        from safetensors import safe_open

        if self._handle is None:
            self._handle = safe_open(str(self.path), framework="numpy")
        return self._handle

    def _slice(self, name: str, lo: int, hi: int) -> np.ndarray:
        return self._tensors().get_slice(name)[lo:hi]

    def _placement(self, start: int, count: int,
                   slots: int) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None:
        """Where the stored boxes of frames ``start .. start+count-1`` go in a
        (count, slots) window: the stored rows ``first .. last``, the window
        row and slot of each box that fits, and which stored boxes fit; None
        when the window holds no box."""
        lo, hi = max(start, 0), min(start + count, self.num_frames)
        if lo >= hi or slots <= 0:
            return None
        offsets = self._slice("offsets", lo, hi + 1)
        first, last = int(offsets[0]), int(offsets[-1])
        if first == last:
            return None
        counts = np.diff(offsets)
        frame = np.repeat(np.arange(lo - start, hi - start), counts)  # window row of every box
        rank = np.arange(last - first) - np.repeat(offsets[:-1] - first, counts)  # 0 = best in its frame
        keep = rank < slots
        return first, last, frame[keep], rank[keep], keep

    def window(self, start: int, count: int, slots: int = 50) -> dict[str, np.ndarray | None]:
        """Frames ``start .. start+count-1`` with at most ``slots`` entities each
        (highest scores first): ``boxes (count,N,4)``, ``cls (count,N)``,
        ``score (count,N)``, ``mask (count,N)`` bool, ``feat (count,N,De)`` or
        None. Frames outside the video are empty."""
        out = empty_window(count, slots, self.feat_dim)
        placement = self._placement(start, count, slots)
        if placement is None:
            return out
        first, last, frame, rank, keep = placement
        out["boxes"][frame, rank] = self._slice("boxes", first, last)[keep]
        out["cls"][frame, rank] = self._slice("cls", first, last)[keep]
        out["score"][frame, rank] = self._slice("score", first, last)[keep]
        out["mask"][frame, rank] = True
        if self.feat_dim is not None:
            out["feat"][frame, rank] = self._slice("feat", first, last)[keep]
        return out

    def truth_window(self, start: int, count: int, slots: int = 50) -> np.ndarray | None:
        """The ground-truth flag (count, N) of the boxes ``window`` returns for
        the same frames (True: a real object, not a false positive), or None
        when the store has no flags (only synthetic stores do). For
        diagnostics such as the share of true card boxes the attention keeps;
        no model reads it."""
        if "truth" not in self._tensors().keys():
            return None
        out = np.zeros((count, slots), bool)
        placement = self._placement(start, count, slots)
        if placement is not None:
            first, last, frame, rank, keep = placement
            out[frame, rank] = self._slice("truth", first, last)[keep].astype(bool)
        return out


def empty_window(count: int, slots: int, feat_dim: int | None) -> dict[str, np.ndarray | None]:
    """``count`` frames of ``slots`` empty entity slots, laid out as
    ``EntityStore.window`` returns them (``feat`` None without features)."""
    return {
        "boxes": np.zeros((count, slots, 4), np.float32),
        "cls": np.zeros((count, slots), np.int64),
        "score": np.zeros((count, slots), np.float32),
        "mask": np.zeros((count, slots), bool),
        "feat": None if feat_dim is None else np.zeros((count, slots, feat_dim), np.float32),
    }


def frame_window(detection: dict[str, np.ndarray], slots: int,
                 feat_dim: int | None) -> dict[str, np.ndarray | None]:
    """One frame's detections (``boxes``, ``cls``, ``score`` [, ``feat``],
    as a detector gives them) as ``EntityStore.window`` gives that frame back
    from a store they were written to: the ``slots`` best by score, features
    through the store's ``FEAT_DTYPE``; arrays (1, N, ...)."""
    score = np.asarray(detection["score"], dtype=np.float32).reshape(-1)
    order = np.argsort(-score, kind="stable")[:slots]
    n = len(order)
    out = empty_window(1, slots, feat_dim)
    out["boxes"][0, :n] = np.asarray(detection["boxes"], dtype=np.float32).reshape(-1, 4)[order]
    out["cls"][0, :n] = np.asarray(detection["cls"], dtype=np.int64).reshape(-1)[order]
    out["score"][0, :n] = score[order]
    out["mask"][0, :n] = True
    if out["feat"] is not None and n and detection.get("feat") is not None:
        feat = np.asarray(detection["feat"], dtype=np.float32).reshape(len(score), -1)[order]
        out["feat"][0, :n] = feat.astype(FEAT_DTYPE).astype(np.float32)
    return out


def store_path(out_dir: str | Path, video_id: str) -> Path:
    """Where ``uglspot detect`` writes the store of ``video_id``."""
    from uglspot.io import safe_name

    return Path(out_dir) / f"{safe_name(video_id)}.entities.safetensors"


def import_glip(pt_path: str | Path, key: StoreKey | dict, num_frames: int | None = None,
                class_base: int = 0, box_scale: tuple[float, float] | None = None,
                out_path: str | Path | None = None) -> Path:
    """Convert a released UGL entity file (a float tensor of rows
    ``[frame, class, x1, y1, x2, y2, feature x 256]``) into a store.

    ``class_base`` is subtracted from the class column (1 if the file counts
    classes from 1); rows of a class below it are left out, as the released
    UGL loader skips rows of class 0 (their number is kept in the header's
    ``extra.skipped_rows``). Boxes already in [0, 1] are kept; pixel boxes need
    ``box_scale = (frame width, frame height)``. The file has no scores, so
    every entity gets score 1 and the file's row order is kept within a frame
    (the store's sort is stable).
    """
    import torch

    key = _key(key)
    pt_path = Path(pt_path)
    if not pt_path.is_file():
        raise UserError(f"{pt_path}: GLIP entity file not found")
    try:
        rows = torch.load(pt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same to the user
        raise UserError(f"{pt_path}: not a readable tensor file ({type(exc).__name__}: {brief(exc, 120)}); "
                        "expected a .pt float tensor of [frame, class, x1, y1, x2, y2, feature...] rows") from None
    if isinstance(rows, np.ndarray):
        rows = torch.from_numpy(rows)
    if not isinstance(rows, torch.Tensor) or rows.ndim != 2 or rows.shape[1] < 6:
        shape = tuple(rows.shape) if isinstance(rows, torch.Tensor) else type(rows).__name__
        raise UserError(f"{pt_path}: expected a 2-D tensor of rows [frame, class, x1, y1, x2, y2, feature...], "
                        f"found {shape}")
    rows = rows.float().numpy()
    raw_cls = rows[:, 1].round().astype(np.int64)
    if len(rows) and raw_cls.min() < 0:
        raise UserError(f"{pt_path}: negative class number {int(raw_cls.min())}; expected class numbers from 0")
    kept = raw_cls >= class_base
    skipped_rows = int((~kept).sum())
    rows = rows[kept]
    frames = rows[:, 0].round().astype(np.int64)
    cls = rows[:, 1].round().astype(np.int64) - class_base
    boxes = rows[:, 2:6].copy()
    feat = rows[:, 6:] if rows.shape[1] > 6 else None
    if len(rows) and frames.min() < 0:
        raise UserError(f"{pt_path}: negative frame index {int(frames.min())}")
    if len(rows) and (cls.min() < 0 or cls.max() >= len(key.prompt)):
        raise UserError(f"{pt_path}: class indices {int(cls.min() + class_base)}..{int(cls.max() + class_base)} "
                        f"do not fit the {len(key.prompt)}-name vocabulary with class base {class_base}; "
                        "pass the vocabulary in the order the file uses (--prompt) and --class-base")
    if box_scale is not None:
        boxes /= np.array([box_scale[0], box_scale[1], box_scale[0], box_scale[1]], dtype=np.float32)
    elif len(rows) and boxes.max() > 1.0 + 1e-3:
        raise UserError(f"{pt_path}: boxes are in pixels (max {boxes.max():.1f}); pass the frame size they "
                        "refer to (--glip-frame-size WxH)")
    boxes = boxes.clip(0.0, 1.0)
    total = int(frames.max()) + 1 if len(rows) else 0
    num_frames = total if num_frames is None else num_frames
    if total > num_frames:
        raise UserError(f"{pt_path}: has entities at frame {total - 1}, past the video's {num_frames} frames; "
                        "check --fps")
    order = np.argsort(frames, kind="stable")
    bounds = np.searchsorted(frames[order], np.arange(num_frames + 1))
    detections = []
    for t in range(num_frames):
        idx = order[bounds[t]:bounds[t + 1]]
        det = {"boxes": boxes[idx], "cls": cls[idx], "score": np.ones(len(idx), np.float32)}
        if feat is not None:
            det["feat"] = feat[idx]
        detections.append(det)
    out_path = Path(out_path) if out_path is not None else pt_path.with_suffix(".entities.safetensors")
    return EntityStore.write(out_path, key, num_frames, detections,
                             extra={"imported_from": str(pt_path), "skipped_rows": skipped_rows})
