"""ONNX export of a spotter: the whole network as one ONNX graph that ONNX
Runtime (or TensorRT, OpenVINO, ...) runs without PyTorch, with what
inference needs besides the weights in the file's ``metadata_props``.

The graph (B batch, T frames, N entity slots, De feature width, K classes;
B is dynamic, the rest fixed at export; docs/export.md has the same table):

- inputs: ``frames`` (B, T, 3, H, W) float32, scaled to [0, 1] and normalised
  with the model's ``pixel_mean`` / ``pixel_std``; for a model with entities,
  the entity tensors it reads (:func:`entity_inputs`): ``mask`` (B, T, N)
  bool, ``boxes`` (B, T, N, 4) float32 xyxy in [0, 1], ``cls`` (B, T, N)
  int64, ``score`` (B, T, N) float32, ``feat`` (B, T, N, De) float32;
- outputs: ``logits`` (B, T, K+1) as ``UGLSpotter.forward`` returns them,
  ``probs`` (B, T, K+1), the per-class probabilities spotting reads
  (``UGLSpotter.scores``: sigmoids, a softmax, or the picked heads'
  probabilities), and with entities ``attention`` (B, T, N).

T is the model's clip length, H × W the frame size the network sees (the
run's crop, else its decoding size), N its entity slots.

Exporter: torch.onnx's TorchScript tracer (``dynamo=False``) by default. Both
it and the dynamo exporter give ONNX Runtime within 3e-6 of PyTorch, but the
tracer exports ten to twenty times faster (2.4-2.9 s against 29-59 s for the
tiny rny002 models of the tests, one thread), needs no ``onnxscript``, and
writes the packed entity slots (a data-dependent ``nonzero``) as plain ONNX
``NonZero`` and gathers at opset 17. torch marks it deprecated;
``exporter="dynamo"`` is the way on once a torch release drops it
(docs/export.md).
"""

from __future__ import annotations

import importlib
import json
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from uglspot import __version__
from uglspot.config import to_dict
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError, brief
from uglspot.model.spotter import PICK_RULES, SpotterConfig, UGLSpotter

ONNX_FORMAT = "uglspot-onnx"
ONNX_FORMAT_VERSION = 1
ONNX_INSTALL = "pip install 'uglspot[onnx]'"
EXPORTERS = ("torchscript", "dynamo")
OPSET = {"torchscript": 17, "dynamo": 18}  # 17: what TensorRT 8.6+ and ONNX Runtime 1.14+ read
TRACE_BATCH = 2  # windows in the example the exporter traces; the graph takes any batch size
# Every entity tensor a graph may take, in the order of its inputs, with the dtype it takes.
ENTITY_TENSORS = {"mask": torch.bool, "boxes": torch.float32, "cls": torch.int64, "score": torch.float32,
                  "feat": torch.float32}


def require(module: str, what: str) -> Any:
    """``module`` imported, or one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs the {module} package, which is not installed; install ONNX support "
                        f"with `{ONNX_INSTALL}` (onnx, onnxruntime, onnxscript)") from None


def entity_inputs(config: SpotterConfig) -> list[str]:
    """The entity tensors the graph of a model with ``config`` takes, in
    order (none for a global-only model): ``mask`` always, ``boxes`` for
    RoIAlign or geometry, ``cls`` for the class embedding, ``score`` for
    geometry, ``feat`` for stored detector features."""
    if not config.use_entities:
        return []
    used = {"mask": True, "boxes": config.entity_source == "backbone" or config.entity_geometry,
            "cls": config.num_entity_classes > 0, "score": config.entity_geometry,
            "feat": config.entity_source == "detector"}
    return [name for name in ENTITY_TENSORS if used[name]]


def output_names(config: SpotterConfig) -> list[str]:
    return ["logits", "probs"] + (["attention"] if config.use_entities else [])


class SpotterGraph(nn.Module):
    """A spotter with plain tensors in and out, the form an exporter traces:
    frames and :func:`entity_inputs` in, ``logits``, ``probs`` [and
    ``attention``] out (module docstring)."""

    def __init__(self, model: UGLSpotter):
        super().__init__()
        self.model = model
        self.entity_names = entity_inputs(model.config)

    def forward(self, frames: torch.Tensor, *entity_tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """frames (B, T, 3, H, W), the entity tensors (B, T, N, ...) named by
        ``entity_names`` → logits, probs (B, T, K+1) [, attention (B, T, N)]."""
        B, T, C, H, W = frames.shape
        entities = None
        if self.entity_names:
            given = dict(zip(self.entity_names, entity_tensors))
            mask = given["mask"]
            # the tensors a model does not read are never inputs; these zeros stand in for them
            entities = EntityBatch(boxes=given.get("boxes", mask.new_zeros(*mask.shape, 4, dtype=torch.float32)),
                                   cls=given.get("cls", mask.new_zeros(mask.shape, dtype=torch.int64)),
                                   score=given.get("score", mask.new_zeros(mask.shape, dtype=torch.float32)),
                                   mask=mask, feat=given.get("feat"))
        output = self.model(frames, entities)
        probs = self.model.scores(output)
        return (output.logits.float(), probs) + ((output.attention.float(),) if output.attention is not None else ())


def network_frame_size(settings: Any, frame_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) of the frames the network sees with ``settings`` (an
    ``InferenceSettings``): the centre crop when the run cropped, else the
    decoding size. ``frame_size`` (width, height) is needed, and only
    allowed, when the decoding keeps each video's aspect ratio (no width)."""
    if settings.crop:
        fixed = (int(settings.crop[0]), int(settings.crop[1]))
    elif settings.height and settings.width:
        fixed = (int(settings.height), int(settings.width))
    else:
        if frame_size is None:
            raise UserError(f"the model decodes videos at height {settings.height} keeping each one's aspect "
                            "ratio, and an ONNX graph takes one frame size: give the size of the videos you "
                            f"will spot with --frame-size WIDTHx{settings.height}")
        return frame_size[1], frame_size[0]
    if frame_size is not None and (frame_size[1], frame_size[0]) != fixed:
        raise UserError(f"the model sees frames of {fixed[1]}x{fixed[0]} (width x height, its inference.json); "
                        f"--frame-size {frame_size[0]}x{frame_size[1]} would not fit them: drop --frame-size")
    return fixed


def example_inputs(config: SpotterConfig, size: tuple[int, int], slots: int, batch: int,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Random graph inputs of ``batch`` windows: frames of ``size`` (height,
    width), and entity slots about 70 % filled, one frame empty, boxes inside
    the frame."""
    g = torch.Generator().manual_seed(seed)
    T, (H, W), N = config.clip_len, size, slots
    inputs = {"frames": torch.randn(batch, T, 3, H, W, generator=g)}
    mask = torch.rand(batch, T, N, generator=g) < 0.7
    mask[:, :, 0] = True
    mask[0, min(1, T - 1)] = False  # a frame with no entity
    corner = torch.rand(batch, T, N, 2, generator=g) * 0.6
    every = {"mask": mask, "boxes": torch.cat([corner, corner + 0.1 + 0.3 * torch.rand(batch, T, N, 2, generator=g)], -1),
             "cls": torch.randint(0, max(1, config.num_entity_classes), (batch, T, N), generator=g),
             "score": torch.rand(batch, T, N, generator=g),
             "feat": torch.randn(batch, T, N, config.entity_feat_dim, generator=g)}
    inputs.update({name: every[name] for name in entity_inputs(config)})
    return inputs


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote."""

    path: Path
    inputs: list[str]
    outputs: list[str]
    frame_size: tuple[int, int]  # (height, width)
    clip_len: int
    slots: int  # entity slots per frame (0 without entities)
    exporter: str
    seconds: float


def export_onnx(model: UGLSpotter, settings: Any, out: str | Path, frame_size: tuple[int, int] | None = None,
                exporter: str = "torchscript", source: str = "") -> OnnxExport:
    """Write ``model`` (on the CPU, float32) with its inference ``settings``
    as one ONNX file at ``out`` (replaced atomically). ``frame_size`` (width,
    height): see :func:`network_frame_size`. ``source`` names the model
    folder in the metadata."""
    onnx = require("onnx", "ONNX export")
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    if exporter == "dynamo":
        require("onnxscript", "the dynamo ONNX exporter")
    size = network_frame_size(settings, frame_size)
    config = model.config
    slots = int(settings.entity_slots) if config.use_entities else 0
    graph = SpotterGraph(model.to("cpu").float().eval()).eval()
    inputs = example_inputs(config, size, max(slots, 1), TRACE_BATCH)
    names, outputs = list(inputs), output_names(config)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="uglspot-onnx-") as scratch:
        traced = Path(scratch) / "model.onnx"
        _run_exporter(graph, tuple(inputs.values()), names, outputs, traced, exporter)
        proto = onnx.load(str(traced))
    graph.eval()  # the exporter puts back the mode it found; keep the model in inference mode whatever it did
    found = [i.name for i in proto.graph.input]
    if found != names:  # an input the network does not read would be dropped: the contract above is wrong
        raise RuntimeError(f"the exported graph takes {found}, expected {names}")
    metadata = onnx_metadata(config, settings, size, names, outputs, exporter, source)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    from uglspot.io import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return OnnxExport(out, names, outputs, size, config.clip_len, slots, exporter, time.perf_counter() - started)


def _run_exporter(graph: SpotterGraph, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str],
                  path: Path, exporter: str) -> None:
    """The chosen torch.onnx exporter, batch dimension dynamic, its warnings
    (tracer notes, deprecation) kept off the user's terminal."""
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            if exporter == "torchscript":
                torch.onnx.export(graph, args, str(path), input_names=names, output_names=outputs,
                                  dynamic_axes={name: {0: "batch"} for name in names + outputs},
                                  opset_version=OPSET[exporter], dynamo=False)
            else:
                batch = torch.export.Dim("batch", min=1)
                entities = (tuple({0: batch} for _ in args[1:]),) if len(args) > 1 else ()  # forward's *entity_tensors
                torch.onnx.export(graph, args, str(path), input_names=names, output_names=outputs,
                                  dynamic_shapes=({0: batch}, *entities), opset_version=OPSET[exporter],
                                  dynamo=True, verbose=False)
        except (RuntimeError, TypeError, ValueError) as exc:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch.export colours its messages
            raise UserError(f"the {exporter} ONNX exporter failed on model {graph.model.config.name} "
                            f"({type(exc).__name__}: {brief(plain, 160)}); try --exporter "
                            f"{'dynamo' if exporter == 'torchscript' else 'torchscript'}") from None


def onnx_metadata(config: SpotterConfig, settings: Any, size: tuple[int, int], inputs: Sequence[str],
                  outputs: Sequence[str], exporter: str, source: str = "") -> dict[str, str]:
    """The file's ``metadata_props``: plain keys a deployment reads (classes,
    frame rate, clip length, frame size, normalisation, which output is
    what), and the full model config and inference settings that let
    ``uglspot spot`` run the file without its run folder. Values are JSON."""
    picked = config.global_head and config.head_mix in PICK_RULES and config.loss != "focal"
    if picked and config.head_mix == "pick_ensemble" and config.entity_aux_output:
        probs = ("each event class from the softmax of the head the model picked for it, the fused head and "
                 "the entity classifier read as one (the mean of their logits); 'no event' the rest")
    elif picked:
        probs = "each event class from the softmax of the head the model picked for it; 'no event' the rest"
    else:
        probs = "sigmoid(logits) per column" if config.loss == "focal" else "softmax(logits) over the K+1 columns"
    plain = {
        "uglspot.format": ONNX_FORMAT, "uglspot.format_version": ONNX_FORMAT_VERSION,
        "uglspot.version": __version__, "uglspot.exporter": exporter, "uglspot.torch": torch.__version__,
        "model": config.name, "source": source, "classes": list(settings.classes),
        "class_index": "output column i+1 is classes[i]; column 0 is 'no event'",
        "fps": settings.fps, "clip_len": config.clip_len, "frame_height": size[0], "frame_width": size[1],
        "entity_slots": int(settings.entity_slots) if config.use_entities else 0,
        "pixel_mean": list(config.pixel_mean), "pixel_std": list(config.pixel_std),
        "normalisation": "frames = (rgb / 255 - pixel_mean) / pixel_std, per channel, RGB order",
        "inputs": list(inputs), "outputs": list(outputs), "probs": probs,
        "uglspot.model_config": to_dict(config), "uglspot.inference": to_dict(settings),
    }
    return {key: json.dumps(value) for key, value in plain.items()}
