"""Open-vocabulary entity detectors: a batch of frames in, per frame the
boxes (xyxy in [0, 1]), class (index into the prompt vocabulary), score and a
feature vector per box out.

Backends (``create_detector``):

- ``grounding-dino``: transformers ``GroundingDinoForObjectDetection``. A
  box's class score is the highest token probability among the prompt
  tokens of that class.
- ``owlv2``: transformers ``Owlv2ForObjectDetection``.
- ``glip-import`` reads released UGL entity files instead of running a model
  (``uglspot.entities.store.import_glip``).

A box's feature (``DetectorConfig.features``):

- ``roi`` (default; the paper's, Fig. 3): RoIAlign of the box on the
  detector's visual backbone map before any language fusion, averaged over
  the pooled grid to one vector of the map's width. Grounding DINO has one
  map per level (its Swin stages after the 1x1 projection to ``d_model``, plus
  the extra strided levels), and a box takes the level FPN's rule gives its
  size in input pixels (``fpn_levels``); OWLv2 has one patch-grid map
  (``image_embeds``, the vision width). The maps are caught from the model's
  own forward pass (forward hooks, or the model's outputs), never by running
  the backbone a second time.
- ``query``: the model's own per-box embedding: Grounding DINO's decoder
  query (``last_hidden_state``, already mixed with the prompt and the other
  queries), OWLv2's class-head embedding (``class_embeds``).

Preprocessing (resize, normalise) runs on the detector's device on the uint8
batch, so a GPU is fed compact frames and does the float work itself.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from uglspot.entities.detectors import DEFAULT_MODELS, DETECTOR_NAMES, FEATURE_KINDS, SOCCER_PROMPT
from uglspot.errors import UserError, brief

# FPN's level rule (Lin et al. 2017, eq. 1): a box of 224 x 224 input pixels
# goes to the level of stride 2**4, one level up per doubling of its side.
CANONICAL_BOX = 224.0
CANONICAL_LEVEL = 4
ROI_GRID = 7  # RoIAlign output bins per side, averaged into one vector
ROI_SAMPLES = 2  # bilinear samples per bin side


@dataclass
class DetectorConfig:
    name: Literal["grounding-dino", "owlv2", "glip-import"] = "grounding-dino"
    model: str | None = None  # hub id or local directory; None = the backend's default
    prompt: list[str] = field(default_factory=lambda: list(SOCCER_PROMPT))
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    max_per_frame: int = 50
    image_size: tuple[int, int] | None = None  # grounding-dino (shortest, longest edge); None = the model's
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    features: Literal["roi", "query"] = "roi"  # what a box's feature is (see the module docstring)

    @property
    def model_id(self) -> str:
        return self.model or DEFAULT_MODELS[self.name]


Detections = list[dict[str, np.ndarray]]
"""One dict per frame: boxes (n,4) float32 xyxy [0,1], cls (n,) int64,
score (n,) float32 (highest first), feat (n,De) float32."""


class EntityDetector(Protocol):
    config: DetectorConfig
    vocabulary: list[str]
    feat_dim: int | None
    input_size: tuple[int, int]  # what goes into the store key's ``size``

    def detect(self, frames: torch.Tensor) -> Detections:
        """frames uint8 (B, 3, H, W) → one detections dict per frame."""
        ...

    def decode_height(self, height: int, width: int) -> int:
        """Height to decode a video at: no more pixels than the model uses."""
        ...


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


# Where a user names the detector model: a hub id or a local directory.
MODEL_OPTIONS = "`uglspot detect --model DIR` or `uglspot spot --detector-model DIR`"
_MODEL_REMEDY = (f"pass a hub id such as {DEFAULT_MODELS['grounding-dino']}, or a folder made by "
                 f"`hf download MODEL_ID --local-dir DIR`, as the detector model ({MODEL_OPTIONS})")


def _offline_error(model: str, exc: Exception) -> UserError:
    return UserError(
        f"cannot load detector model {model!r} ({type(exc).__name__}: {brief(exc)}); "
        f"if this machine cannot download it, run `hf download {model} --local-dir DIR` "
        f"on a connected machine, copy DIR here and pass it as the detector model ({MODEL_OPTIONS})")


def _cached_or_unreachable(model_id: str) -> bool:
    """True if the hub model is in the local cache; an error at once (not
    after minutes of retries) if it is not and the hub cannot be reached."""
    from huggingface_hub import try_to_load_from_cache

    from uglspot.hub import offline_reason

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return True
    reason = offline_reason(model_id)
    if reason is not None:
        raise _offline_error(model_id, OSError(reason))
    return False


def _missing_model_files(folder: Path) -> list[str]:
    """What a transformers model folder lacks: its config, its processor's
    settings, its weights (as `hf download` or ``save_pretrained`` write them)."""
    wanted = {"config.json": ("config.json",),
              "processor_config.json": ("processor_config.json", "preprocessor_config.json"),
              "weights (*.safetensors)": ("*.safetensors", "*.bin")}
    return [name for name, patterns in wanted.items()
            if not any(next(folder.glob(pattern), None) is not None for pattern in patterns)]


def _load(model_cls, model_id: str):
    """Model and processor from a local directory or the Hugging Face hub."""
    from transformers import AutoProcessor

    local = Path(model_id).expanduser()
    if not local.exists() and (model_id.startswith((".", "/", "~")) or model_id.count("/") > 1):
        raise UserError(f"{model_id}: model directory not found; {_MODEL_REMEDY}")
    if local.exists() and not local.is_dir():
        raise UserError(f"{model_id}: a file; the detector model is a hub id or a model directory; {_MODEL_REMEDY}")
    if local.is_dir():
        missing = _missing_model_files(local)
        if missing:
            raise UserError(f"{model_id}: not a complete model folder (no {' and no '.join(missing)} in it); "
                            f"{_MODEL_REMEDY}")
    source = str(local) if local.is_dir() else model_id
    local_only = local.is_dir() or _cached_or_unreachable(model_id)
    from safetensors import SafetensorError

    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
        model = model_cls.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        if local.is_dir():  # nothing to download: the folder itself is damaged
            reason = brief(str(exc).replace(f"'{source}'", "it").replace(source, "it"))
            raise UserError(f"{model_id}: cannot load the detector model in this folder ({type(exc).__name__}: "
                            f"{reason}); {_MODEL_REMEDY}") from None
        raise _offline_error(model_id, exc) from None
    return model.eval(), processor


def top_detections(scores: torch.Tensor, classes: torch.Tensor, boxes: torch.Tensor, feats: torch.Tensor | None,
                   threshold: float, limit: int) -> Detections:
    """Keep, per image, the queries scoring above ``threshold``, at most
    ``limit`` of them, highest score first.

    scores (B, Q), classes (B, Q), boxes (B, Q, 4) xyxy [0,1], feats (B, Q, D).
    """
    B, Q = scores.shape
    k = min(limit, Q)
    top_score, top_index = scores.float().topk(k, dim=1)  # (B, k), sorted
    keep = (top_score > threshold).cpu().numpy()
    top_score = top_score.cpu().numpy()
    top_cls = classes.gather(1, top_index).cpu().numpy()
    top_boxes = boxes.float().gather(1, top_index[..., None].expand(B, k, 4)).cpu().numpy()
    top_feat = None
    if feats is not None:
        top_feat = feats.float().gather(1, top_index[..., None].expand(B, k, feats.shape[-1])).cpu().numpy()
    out = []
    for b in range(B):
        n = int(keep[b].sum())  # scores are sorted, so the kept ones come first
        det = {"boxes": top_boxes[b, :n].astype(np.float32), "cls": top_cls[b, :n].astype(np.int64),
               "score": top_score[b, :n].astype(np.float32)}
        if top_feat is not None:
            det["feat"] = top_feat[b, :n].astype(np.float32)
        out.append(det)
    return out


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def fpn_levels(boxes: torch.Tensor, strides: list[int]) -> torch.Tensor:
    """Index into ``strides`` of the map each box is pooled from, by FPN's
    rule: level ``floor(4 + log2(sqrt(w h) / 224))`` (stride ``2**level``),
    clamped to the levels there are. boxes (M, 4) xyxy in input pixels."""
    levels = torch.tensor([math.log2(s) for s in strides], device=boxes.device)  # (L,)
    side = ((boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)).sqrt()
    wanted = torch.floor(CANONICAL_LEVEL + torch.log2(side.clamp_min(1e-6) / CANONICAL_BOX) + 1e-6)
    wanted = wanted.clamp(levels.min(), levels.max())
    return (wanted[:, None] - levels[None, :]).abs().argmin(dim=1)  # (M,)


def map_stride(input_hw: tuple[int, int], map_hw: tuple[int, int]) -> int:
    """The stride in input pixels of a map of ``map_hw`` cells over an input of
    ``input_hw`` pixels, a power of two (maps of padded inputs have a cell more)."""
    return 2 ** round(math.log2(max(input_hw[0] / map_hw[0], input_hw[1] / map_hw[1])))


def roi_features(maps: list[torch.Tensor], strides: list[int], boxes: list[torch.Tensor]) -> list[torch.Tensor]:
    """One vector per box: RoIAlign (``ROI_GRID`` bins a side, pixel-aligned)
    of the box on the map its size picks (``fpn_levels``), averaged over the bins.

    maps: one (B, C, h, w) per level, ``strides[l]`` input pixels per cell;
    boxes: per image (n_b, 4) xyxy in input pixels. Returns per image (n_b, C) float32.
    """
    from torchvision.ops import roi_align

    B, C = maps[0].shape[:2]
    counts = [len(b) for b in boxes]
    rois = torch.cat([b.float() for b in boxes])  # (M, 4)
    if len(rois) == 0:
        return [rois.new_zeros(0, C) for _ in boxes]
    image = torch.repeat_interleave(torch.arange(B, device=rois.device), torch.tensor(counts, device=rois.device))
    rois = torch.cat([image[:, None].to(rois.dtype), rois], dim=1)  # (M, 5): image index, x1, y1, x2, y2
    level = fpn_levels(rois[:, 1:], strides)
    out = rois.new_zeros(len(rois), C)
    for index, (fmap, stride) in enumerate(zip(maps, strides)):
        chosen = (level == index).nonzero().squeeze(1)
        if len(chosen):
            pooled = roi_align(fmap.float(), rois[chosen], ROI_GRID, spatial_scale=1.0 / stride,
                               sampling_ratio=ROI_SAMPLES, aligned=True)  # (m, C, 7, 7)
            out[chosen] = pooled.mean(dim=(2, 3))
    return list(out.split(counts))


@contextmanager
def captured_outputs(modules: list[torch.nn.Module]) -> Iterator[dict[int, torch.Tensor]]:
    """While open, ``outputs[i]`` is the latest output of ``modules[i]`` (forward hooks)."""
    outputs: dict[int, torch.Tensor] = {}
    handles = [module.register_forward_hook(lambda _m, _in, out, i=i: outputs.__setitem__(i, out))
               for i, module in enumerate(modules)]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def phrase_token_classes(text: str, phrases: list[str], offsets: list[tuple[int, int]]) -> list[int]:
    """Class index of each token of ``text`` (``-1`` for separators and
    special tokens), from the tokens' character offsets and where each phrase
    sits in ``text``."""
    spans = []
    position = 0
    for c, phrase in enumerate(phrases):
        begin = text.index(phrase.lower(), position)
        spans.append((begin, begin + len(phrase), c))
        position = begin + len(phrase)
    out = []
    for start, end in offsets:
        owner = -1
        if end > start:
            for begin, stop, c in spans:
                if begin <= start and end <= stop:
                    owner = c
                    break
        out.append(owner)
    return out


class _TransformersDetector:
    """What the transformers backends share: the prompt vocabulary, the model
    on its device in its dtype, and the image processor's normalisation."""

    def _setup(self, model_cls, config: DetectorConfig, device: str | torch.device):
        """Load ``model_cls`` from ``config.model_id``; returns its processor."""
        self.config = config
        self.device = torch.device(device)
        self.vocabulary = list(config.prompt)
        if not self.vocabulary:
            raise UserError("the detector prompt is empty; give at least one entity name")
        if config.features not in FEATURE_KINDS:
            raise UserError(f"unknown detector features {config.features!r}; choose one of {', '.join(FEATURE_KINDS)}")
        self.features = config.features
        self.model, processor = _load(model_cls, config.model_id)
        self.model.to(self.device)
        self.dtype = _resolve_dtype(config.dtype, self.device)
        image_processor = processor.image_processor
        self.mean = torch.tensor(image_processor.image_mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(image_processor.image_std, device=self.device).view(1, 3, 1, 1)
        return processor

    def add_roi_features(self, detections: Detections, maps: list[torch.Tensor], input_hw: tuple[int, int],
                         box_to_input: tuple[float, float]) -> Detections:
        """Set each detection's ``feat`` to its box's RoI feature on ``maps``
        (one (B, C, h, w) per level over an input of ``input_hw`` pixels);
        ``box_to_input`` (sx, sy) takes a stored box (xyxy in [0, 1] of the
        frame) to input pixels."""
        strides = [map_stride(input_hw, tuple(m.shape[-2:])) for m in maps]
        scale = torch.tensor([box_to_input[0], box_to_input[1]] * 2, device=maps[0].device)
        boxes = [torch.from_numpy(d["boxes"]).to(maps[0].device) * scale for d in detections]
        for det, feat in zip(detections, roi_features(maps, strides, boxes)):
            det["feat"] = feat.cpu().numpy().astype(np.float32)
        return detections


class GroundingDinoDetector(_TransformersDetector):
    """Grounding DINO through transformers (see the module docstring)."""

    def __init__(self, config: DetectorConfig, device: str | torch.device = "cpu"):
        from transformers import GroundingDinoForObjectDetection

        processor = self._setup(GroundingDinoForObjectDetection, config, device)
        size = processor.image_processor.size
        default = (size.get("shortest_edge") or 800, size.get("longest_edge") or 1333) \
            if hasattr(size, "get") else (800, 1333)
        self.input_size = tuple(config.image_size or default)
        text = ". ".join(p.lower() for p in self.vocabulary) + "."
        encoded = processor.tokenizer([text], return_offsets_mapping=True, return_tensors="pt")
        max_len = self.model.config.max_text_len
        if encoded.input_ids.shape[1] > max_len:
            raise UserError(f"the detector prompt is {encoded.input_ids.shape[1]} tokens, the model takes "
                            f"{max_len}; use fewer or shorter entity names")
        self.text = {k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")
                     if k in encoded}
        token_class = phrase_token_classes(text, self.vocabulary, encoded.offset_mapping[0].tolist())
        # (L, C) one-hot: which tokens belong to which class
        one_hot = torch.zeros(len(token_class), len(self.vocabulary), dtype=torch.bool)
        for position, c in enumerate(token_class):
            if c >= 0:
                one_hot[position, c] = True
        missing = [self.vocabulary[c] for c in range(len(self.vocabulary)) if not one_hot[:, c].any()]
        if missing:
            raise UserError(f"prompt entries {missing} give no tokens with this model's tokenizer")
        self.token_class = one_hot.to(self.device)
        self.feat_dim = self.model.config.d_model  # both kinds: the query and the projected maps are d_model wide
        # the visual maps before language fusion: each Swin level after its projection to d_model
        self.map_modules = list(self.model.model.input_proj_vision) if self.features == "roi" else []

    def decode_height(self, height: int, width: int) -> int:
        return min(height, self.input_size[0] if height <= width else self.input_size[1])

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B,3,H,W) → normalised float (B,3,h,w), shortest edge
        ``input_size[0]``, longest at most ``input_size[1]``."""
        B, _, H, W = frames.shape
        short, long = self.input_size
        scale = min(short / min(H, W), long / max(H, W))
        h, w = int(round(H * scale)), int(round(W * scale))
        x = frames.to(self.device, non_blocking=True).float().div_(255)
        if (h, w) != (H, W):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std

    def forward(self, pixels: torch.Tensor):
        """The bare model on a preprocessed batch (B,3,h,w)."""
        B = pixels.shape[0]
        text = {k: v.expand(B, -1) for k, v in self.text.items()}
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.model(pixel_values=pixels, pixel_mask=None, **text)

    def postprocess(self, outputs, maps: list[torch.Tensor] | None = None,
                    input_hw: tuple[int, int] | None = None) -> Detections:
        """Per query: class score = max token probability over each class's
        tokens; keep above the thresholds, best first. ``roi`` features need
        the projected visual ``maps`` (B, d_model, h, w) per level of the same
        forward pass and the input size ``input_hw`` they cover."""
        L = self.token_class.shape[0]
        probs = outputs.logits[..., :L].float().sigmoid()  # (B, Q, L)
        class_scores = (probs[..., :, None] * self.token_class).amax(dim=2)  # (B, Q, C)
        scores, classes = class_scores.max(dim=-1)  # (B, Q)
        threshold = max(self.config.box_threshold, self.config.text_threshold)
        boxes = cxcywh_to_xyxy(outputs.pred_boxes.float()).clamp(0, 1)
        query = outputs.last_hidden_state if self.features == "query" else None
        detections = top_detections(scores, classes, boxes, query, threshold, self.config.max_per_frame)
        if self.features == "roi":  # the input is the whole frame resized: box * input size
            detections = self.add_roi_features(detections, maps, input_hw, (input_hw[1], input_hw[0]))
        return detections

    @torch.inference_mode()
    def detect(self, frames: torch.Tensor) -> Detections:
        pixels = self.preprocess(frames)
        with captured_outputs(self.map_modules) as caught:
            outputs = self.forward(pixels)
        maps = [caught[level] for level in range(len(self.map_modules))]
        return self.postprocess(outputs, maps, tuple(pixels.shape[-2:]))


class Owlv2Detector(_TransformersDetector):
    """OWLv2 through transformers (see the module docstring)."""

    def __init__(self, config: DetectorConfig, device: str | torch.device = "cpu"):
        from transformers import Owlv2ForObjectDetection

        processor = self._setup(Owlv2ForObjectDetection, config, device)
        side = self.model.config.vision_config.image_size
        self.input_size = (side, side)
        max_len = self.model.config.text_config.max_position_embeddings
        encoded = processor.tokenizer([f"a photo of a {p}" for p in self.vocabulary], padding="max_length",
                                      max_length=max_len, truncation=True, return_tensors="pt")
        self.text = {"input_ids": encoded.input_ids.to(self.device),
                     "attention_mask": encoded.attention_mask.to(self.device)}
        # roi: the patch-grid map (vision width); query: the class head's embedding (text width)
        self.feat_dim = (self.model.config.vision_config.hidden_size if self.features == "roi"
                         else self.model.config.text_config.hidden_size)

    def decode_height(self, height: int, width: int) -> int:
        return min(height, int(round(self.input_size[0] * height / max(height, width))))

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B,3,H,W) → padded to a square (grey, bottom/right as OWLv2
        was trained), resized to the model's side, normalised."""
        B, _, H, W = frames.shape
        side = max(H, W)
        x = frames.to(self.device, non_blocking=True).float().div_(255)
        x = F.pad(x, (0, side - W, 0, side - H), value=0.5)
        x = F.interpolate(x, size=self.input_size, mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std

    def forward(self, pixels: torch.Tensor):
        B = pixels.shape[0]
        text = {k: v.repeat(B, 1) for k, v in self.text.items()}  # (B*C, L) for C prompt phrases
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.model(pixel_values=pixels, **text)

    def postprocess(self, outputs, frame_size: tuple[int, int]) -> Detections:
        """Best boxes above the threshold, in frame coordinates; ``roi``
        features pool ``outputs.image_embeds``, the patch-grid map the boxes
        and class embeddings are predicted from."""
        H, W = frame_size
        side = max(H, W)
        scores, classes = outputs.logits.float().sigmoid().max(dim=-1)  # (B, P)
        boxes = cxcywh_to_xyxy(outputs.pred_boxes.float())  # relative to the padded square
        boxes = boxes * boxes.new_tensor([side / W, side / H, side / W, side / H])
        query = outputs.class_embeds if self.features == "query" else None
        detections = top_detections(scores, classes, boxes.clamp(0, 1), query,
                                    self.config.box_threshold, self.config.max_per_frame)
        if self.features == "roi":
            grid = outputs.image_embeds.permute(0, 3, 1, 2)  # (B, D, gh, gw)
            S = self.input_size[0]  # the frame, padded to a side x side square, resized to S x S
            detections = self.add_roi_features(detections, [grid], self.input_size, (W / side * S, H / side * S))
        return detections

    @torch.inference_mode()
    def detect(self, frames: torch.Tensor) -> Detections:
        return self.postprocess(self.forward(self.preprocess(frames)), tuple(frames.shape[-2:]))


def create_detector(config: DetectorConfig, device: str | torch.device = "cpu") -> EntityDetector:
    """The detector backend named by ``config.name``."""
    if config.max_per_frame < 1:
        raise UserError(f"max entities per frame must be at least 1, got {config.max_per_frame}")
    if config.name == "grounding-dino":
        return GroundingDinoDetector(config, device)
    if config.name == "owlv2":
        return Owlv2Detector(config, device)
    if config.name == "glip-import":
        raise UserError("glip-import reads released entity files instead of running a model; "
                        "give it the .pt files: `uglspot detect FILE.pt... --detector glip-import`")
    raise UserError(f"unknown detector {config.name!r}; choose one of {', '.join(DETECTOR_NAMES)}")


def prefetch(batches: Iterator, depth: int = 2) -> Iterator:
    """Run an iterator (video decoding) in a background thread, ``depth``
    items ahead, so decoding overlaps the detector; errors are re-raised here."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    return
                box.put(item)
            box.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box.put(exc)

    worker = threading.Thread(target=produce, daemon=True, name="uglspot-decode")
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                box.get(timeout=0.1)
            except queue.Empty:
                pass


def detect_video(detector: EntityDetector, path: str | Path, fps: float | None, batch_size: int = 8,
                 progress=None) -> tuple[int, Detections, UserError | None]:
    """Run ``detector`` on every target frame of a video. Returns the number
    of target frames, the detections of the frames decoded, and the decode
    error if the video broke part-way (the frames before it are kept)."""
    from uglspot.video import DecodeError, VideoReader, probe

    info = probe(path)
    height = detector.decode_height(info.height, info.width)
    reader = VideoReader(path, fps=fps, size=height if height < info.height else None,
                         threads=max(1, (os.cpu_count() or 2) // 2))
    detections: Detections = []
    try:
        for _, frames in prefetch(reader.iter_batches(batch_size=batch_size)):
            detections.extend(detector.detect(frames))
            if progress is not None:
                progress(len(frames))
    except DecodeError as exc:
        return reader.num_frames, detections, exc
    return reader.num_frames, detections, None


def store_key(config: DetectorConfig, video_id: str, source: Path, fps: float | None):
    """The ``StoreKey`` of ``source`` detected with ``config`` at ``fps``.
    Released GLIP files hold RoI features, so their stores are ``roi``."""
    from uglspot.entities.store import StoreKey

    if config.features not in FEATURE_KINDS:
        raise UserError(f"unknown detector features {config.features!r}; choose one of {', '.join(FEATURE_KINDS)}")
    if config.name == "glip-import" and config.features != "roi":
        raise UserError("glip-import files already hold RoI features of GLIP's visual map; "
                        f"drop --features {config.features} (or use --features roi)")
    stat = Path(source).stat()
    local = Path(config.model_id).expanduser()
    model = str(local.resolve()) if local.is_dir() else config.model_id  # a local model from any folder
    return StoreKey(video=video_id, detector=config.name, model=model, prompt=tuple(config.prompt),
                    box_threshold=config.box_threshold, text_threshold=config.text_threshold,
                    max_per_frame=config.max_per_frame, fps=fps,
                    size=tuple(config.image_size) if config.image_size else None,
                    source_bytes=stat.st_size, source_mtime=stat.st_mtime, features=config.features)


def config_for_stores(stored: dict[str, Any], name: str) -> DetectorConfig:
    """The ``DetectorConfig`` of backend ``name`` that makes stores like those
    with the detection fields ``stored`` (a ``StoreKey``'s ``detector``,
    ``model``, ``prompt``, thresholds, ``max_per_frame``, ``size``,
    ``features``): the inverse of :func:`store_key`. The prompt (same
    vocabulary, same order) and a feature kind the backend makes are always
    carried over; the model, thresholds, box count and input size only with
    the same backend."""
    from uglspot.config import from_dict

    data: dict[str, Any] = {"name": name}
    if stored.get("detector") == name:
        data.update(model=stored["model"], box_threshold=stored["box_threshold"],
                    text_threshold=stored["text_threshold"], max_per_frame=stored["max_per_frame"],
                    image_size=stored["size"])
        if data["model"] == DEFAULT_MODELS.get(name):
            data["model"] = None
    if stored.get("prompt"):
        data["prompt"] = list(stored["prompt"])
    if stored.get("features") in FEATURE_KINDS:  # roi or query; simulated stores leave the default
        data["features"] = stored["features"]
    return from_dict(DetectorConfig, data, "detector settings of the training stores")


def is_done(path: Path, key) -> bool:
    """Whether the store at ``path`` is complete (no damage) and made with ``key``."""
    from uglspot.entities.store import EntityStore, StoreKey, key_differences

    if not path.is_file():
        return False
    try:
        header = EntityStore.read_header(path)
    except UserError:
        return False
    return not header.get("extra", {}).get("damage") and \
        not key_differences(StoreKey.from_json(header["key"]), key)


def detect_video_to_store(detector: EntityDetector, source: Path, key, out_path: Path, batch_size: int = 8,
                          progress=None) -> UserError | None:
    """Detect the entities of one video into the store ``out_path`` (atomic).
    A video that breaks part-way still gets a store of the frames before the
    damage, with the damage recorded in its header (so it is redone next
    time); the damage is returned."""
    from uglspot.entities.store import EntityStore

    num_frames, detections, damage = detect_video(detector, source, key.fps, batch_size, progress=progress)
    extra = {"input_size": list(detector.input_size), "device": str(getattr(detector, "device", "cpu"))}
    if damage is not None:
        extra["damage"] = str(damage)
    EntityStore.write(out_path, key, num_frames, detections, extra=extra)
    return damage


@dataclass
class DetectOutcome:
    done: list[str] = field(default_factory=list)  # video ids whose store was written
    skipped: list[str] = field(default_factory=list)  # already done with the same key
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def detect_to_stores(config: DetectorConfig, videos: list[tuple[Path, str]], out_dir: str | Path,
                     fps: float | None, device: str | torch.device = "cpu", batch_size: int = 8, force: bool = False,
                     label: str = "", position: int = 0, features: str | None = None) -> DetectOutcome:
    """Detect every video of ``videos`` ((file, video id) pairs) into
    ``store_path(out_dir, video id)``, skipping videos whose store is already
    complete with the same key (unless ``force``). The detector is loaded only
    when a video needs it. Goes on past a bad video; failures are returned.
    ``features`` (``roi`` or ``query``), when given, overrides ``config.features``.
    This is the per-video work of ``uglspot detect`` and ``uglspot spot --detector``."""
    import dataclasses

    from uglspot.entities.store import store_path
    from uglspot.progress import progress_bar

    if batch_size < 1:
        raise UserError(f"the detector batch size must be at least 1, got {batch_size}")
    if fps is not None and fps <= 0:
        raise UserError(f"the detection frame rate must be positive, got {fps}")
    if features is not None:
        config = dataclasses.replace(config, features=features)
    outcome = DetectOutcome()
    todo = []
    for path, video_id in videos:
        path = Path(path)
        if not path.is_file():
            outcome.failures.append((str(path), "no such file" if not path.exists() else "not a file"))
            continue
        key = store_key(config, video_id, path, fps)
        if not force and is_done(store_path(out_dir, video_id), key):
            outcome.skipped.append(video_id)
            continue
        todo.append((path, video_id, key))
    if not todo:
        return outcome
    detector = create_detector(config, device)
    videos_bar = progress_bar(f"{label}detect {config.name}: videos", len(todo), "video", position=position,
                              disable=len(todo) < 2)
    frames_bar = progress_bar(f"{label}detect {config.name}: frames", unit="frame", position=position + 1)
    try:
        for path, video_id, key in todo:
            try:
                damage = detect_video_to_store(detector, path, key, store_path(out_dir, video_id), batch_size,
                                               progress=frames_bar.update)
                outcome.done.append(video_id)
                if damage is not None:
                    outcome.failures.append((str(path), str(damage)))
            except (UserError, OSError) as exc:
                outcome.failures.append((str(path), str(exc)))
            videos_bar.update(1)
    finally:
        frames_bar.close()
        videos_bar.close()
    return outcome
