"""Spotting with an exported ONNX file (``uglspot export``) run by ONNX
Runtime on the CPU, through the one spotting loop (``engine.infer``).

:class:`OnnxSpotterModel` has the surface that loop reads from a model
(``config``, ``device``, ``eval()``, a call with frames and entities that
returns a ``SpotterOutput``, ``scores``), so PyTorch and ONNX Runtime share
windows, stitching, NMS and the events written. The file carries its own
inference settings (``uglspot.inference`` in its metadata), so a deployment
needs the .onnx file alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uglspot.config import from_dict
from uglspot.engine.infer import InferenceModel, InferenceSettings, load_spotter
from uglspot.engine.onnx_export import ENTITY_TENSORS, ONNX_FORMAT, ONNX_FORMAT_VERSION, require
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError, brief
from uglspot.model.spotter import SpotterConfig, SpotterOutput

RUNTIMES = ("torch", "onnx")
ONNX_FILE = "model.onnx"  # what `uglspot export RUN` writes into RUN, and where `spot --runtime onnx` looks


class OnnxSpotterModel:
    """An exported spotter run by ONNX Runtime's CPU provider, called as a
    ``UGLSpotter`` is in inference: frames (B, T, 3, H, W) normalised and an
    ``EntityBatch`` (or None) → ``SpotterOutput`` with ``probs`` set."""

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = require("onnxruntime", "running an ONNX model")
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: ONNX file not found; write one with `uglspot export RUN --format onnx`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # as many as PyTorch would use
        options.log_severity_level = 3  # errors only: its notes are not the user's business
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for a file it cannot read
            raise UserError(f"{self.path}: not an ONNX model ONNX Runtime can load ({brief(exc, 160)}); "
                            "export the model again with `uglspot export`") from None
        self.metadata = read_metadata(self.path, self.session.get_modelmeta().custom_metadata_map)
        self.config = from_dict(SpotterConfig, self.metadata["uglspot.model_config"], f"{self.path} metadata")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.window = (self.config.clip_len, int(self.metadata["frame_height"]), int(self.metadata["frame_width"]))
        self.slots = int(self.metadata["entity_slots"])
        self.device = torch.device("cpu")

    def eval(self) -> "OnnxSpotterModel":
        return self

    def __call__(self, frames: torch.Tensor, entities: EntityBatch | None = None) -> SpotterOutput:
        """frames (B, T, 3, H, W) normalised; entities (B, T, N) → logits,
        probs (B, T, K+1) and attention (B, T, N) (None without entities)."""
        B, T, C, H, W = frames.shape
        if (T, H, W) != self.window:
            t, h, w = self.window
            raise UserError(f"{self.path}: exported for windows of {t} frames of {w}x{h} pixels (width x height), "
                            f"given {T} frames of {W}x{H}; export it for this size "
                            f"(`uglspot export RUN --frame-size {W}x{H} --out FILE.onnx`)")
        feeds = {"frames": frames.detach().float().cpu().numpy()}
        names = [name for name in self.inputs if name != "frames"]
        if names:
            if entities is None:  # no entity anywhere: what the network does with no entity in any slot
                entities = EntityBatch.empty(B, T, self.slots, self.config.entity_feat_dim)
            if entities.mask.shape[2] != self.slots:
                raise UserError(f"{self.path}: exported for {self.slots} entity slots per frame, given "
                                f"{entities.mask.shape[2]}; export the model with the entity_slots you spot with")
            for name in names:
                tensor = getattr(entities, name)
                if tensor is None:
                    raise UserError(f"{self.path}: the model reads stored detector features ({name}), and the "
                                    "entity stores hold none; detect with features as the training stores were")
                feeds[name] = tensor.detach().cpu().to(ENTITY_TENSORS[name]).numpy()
        results = dict(zip(self.outputs, self.session.run(None, feeds)))
        attention = results.get("attention")
        return SpotterOutput(torch.from_numpy(results["logits"]),
                             None if attention is None else torch.from_numpy(attention),
                             probs=torch.from_numpy(results["probs"]))

    def scores(self, output: SpotterOutput) -> torch.Tensor:
        """The per-class probabilities (B, T, K+1), computed in the graph."""
        assert output.probs is not None
        return output.probs.float()


def read_metadata(path: Path, props: dict[str, str]) -> dict[str, Any]:
    """The JSON values of an uglspot ONNX file's ``metadata_props``; a file
    ``uglspot export`` did not write is refused in one line."""
    if props.get("uglspot.format") != json.dumps(ONNX_FORMAT):
        raise UserError(f"{path}: an ONNX model without uglspot's metadata (classes, frame rate, windows); "
                        "spot runs the files `uglspot export` writes")
    try:
        metadata = {key: json.loads(value) for key, value in props.items()}
    except ValueError as exc:
        raise UserError(f"{path}: its uglspot metadata is not JSON ({brief(exc, 120)}); export it again") from None
    if metadata.get("uglspot.format_version") != ONNX_FORMAT_VERSION:
        raise UserError(f"{path}: uglspot ONNX format version {metadata.get('uglspot.format_version')!r}; this "
                        f"uglspot reads version {ONNX_FORMAT_VERSION}: export the model again with it")
    missing = [k for k in ("uglspot.model_config", "uglspot.inference", "frame_height", "frame_width",
                           "entity_slots") if k not in metadata]
    if missing:
        raise UserError(f"{path}: its uglspot metadata lacks {', '.join(missing)}; export the model again")
    return metadata


def onnx_file(model: str | Path) -> Path:
    """The ONNX file of ``model``: the file itself, or ``model.onnx`` in a folder."""
    model = Path(model)
    if model.is_dir():
        if not (model / ONNX_FILE).is_file():
            raise UserError(f"{model}: no {ONNX_FILE} here for --runtime onnx; write it with "
                            f"`uglspot export {model} --format onnx`, or pass the .onnx file as --model")
        return model / ONNX_FILE
    if not model.is_file():
        raise UserError(f"{model}: no such file or folder; pass a run folder of `uglspot train` or an .onnx file "
                        "of `uglspot export`")
    return model


def load_onnx_spotter(path: str | Path, threads: int | None = None) -> InferenceModel:
    """An :class:`InferenceModel` over an exported ONNX file: its model run by ONNX
    Runtime, its settings from the file (precision fp32: the graph's)."""
    model = OnnxSpotterModel(onnx_file(path), threads)
    where = f"{model.path} metadata uglspot.inference"
    from uglspot.engine.model_folder import check_inference_settings

    settings = from_dict(InferenceSettings, check_inference_settings(model.metadata["uglspot.inference"], where), where)
    return InferenceModel(model=model, settings=replace(settings, precision="off"), directory=model.path.parent)  # type: ignore[arg-type]


def spotter_for(model: str | Path, runtime: str | None, device: torch.device | str = "cpu") -> InferenceModel:
    """The spotter of ``model`` run by ``runtime``: ``torch`` (a run or
    checkpoint folder, on ``device``) or ``onnx`` (an .onnx file, or a
    folder's ``model.onnx``, on the CPU); None picks onnx for an .onnx file,
    torch otherwise."""
    model = Path(model)
    is_onnx_file = model.suffix.lower() == ".onnx"
    runtime = runtime or ("onnx" if is_onnx_file else "torch")
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "onnx":
        return load_onnx_spotter(model)
    if is_onnx_file:
        raise UserError(f"{model}: an ONNX file runs with ONNX Runtime; drop --runtime torch, or give the run "
                        "folder to run it with PyTorch")
    return load_spotter(model, device)


def compare_with_torch(model: torch.nn.Module, path: str | Path, batch: int = 1, seed: int = 1) -> dict[str, float]:
    """max |ONNX Runtime − PyTorch| of each output of the exported file at
    ``path`` and the PyTorch ``model`` it came from, on the same random
    inputs of ``batch`` windows (the export traced another batch size)."""
    from uglspot.engine.onnx_export import SpotterGraph, example_inputs

    exported = OnnxSpotterModel(path)
    T, H, W = exported.window
    inputs = example_inputs(exported.config, (H, W), max(exported.slots, 1), batch, seed)
    results = exported.session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})
    graph = SpotterGraph(model).eval()
    with torch.no_grad():
        expected = graph(*inputs.values())
    return {name: float(np.abs(got.astype(np.float64) - want.double().numpy()).max()) if got.size else 0.0
            for name, got, want in zip(exported.outputs, results, expected)}
