"""Open-vocabulary entity detector backends: a batch of frames in, per frame the
boxes (xyxy in [0, 1]), class (index into the prompt vocabulary), score and a
feature vector per box out.

Backends (``create_detector``):

- ``grounding-dino``: transformers ``GroundingDinoForObjectDetection``. A
  box's class score is the highest token probability among the prompt
  tokens of that class.
- ``owlv2``: transformers ``Owlv2ForObjectDetection``.
- ``glip-import`` reads released UGL entity files instead of running a model
  (``uglspot.entities.store.import_glip``).

Model files come from ``uglspot.entities.model_files``; box and RoI
operations from ``uglspot.entities.boxes``; running a backend over whole
videos into entity stores is ``uglspot.entities.pipeline``.

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

from contextlib import contextmanager
from typing import Iterator, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from uglspot.entities.boxes import cxcywh_to_xyxy, map_stride, roi_features
from uglspot.entities.detector_settings import DETECTOR_NAMES, FEATURE_KINDS, DetectorConfig
from uglspot.entities.model_files import load_model
from uglspot.errors import UserError


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
        self.model, processor = load_model(model_cls, config.model_id)
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
