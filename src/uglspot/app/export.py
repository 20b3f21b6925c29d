"""Export a trained model to ONNX (``uglspot export``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("onnx",)


@dataclass
class ExportOutcome:
    """The file :func:`export_model` wrote and how it compares with PyTorch."""

    out: Path
    model: str  # the variant's name
    classes: list[str]
    inputs: list[str]
    outputs: list[str]
    frame_size: tuple[int, int]  # (height, width) the graph takes
    clip_len: int
    slots: int  # entity slots per frame, 0 without entities
    exporter: str
    seconds: float  # the export alone
    size_bytes: int
    # max |ONNX Runtime − PyTorch| per output on one random window (the export traced two), {} when not checked
    difference: dict[str, float] = field(default_factory=dict)


def export_model(run: str | Path, out: str | Path | None = None, format: str = "onnx",
                 frame_size: tuple[int, int] | None = None, exporter: str = "torchscript",
                 overwrite: bool = False, check: bool = True) -> ExportOutcome:
    """Export the model of ``run`` (a run folder of ``uglspot train``, its
    best checkpoint, or a checkpoint folder) to ``out`` (default
    ``run/model.onnx``, where ``spot --runtime onnx`` looks), with its
    classes, frame rate, window, frame size and normalisation in the file's
    metadata. An existing ``out`` is kept unless ``overwrite``. ``frame_size``
    (width, height) is needed when the model keeps each video's aspect
    ratio. With ``check``, ONNX Runtime and PyTorch score one random window
    and the outcome holds their largest differences."""
    from uglspot.engine.head_choice import apply_head_choice
    from uglspot.engine.model_folder import load_model
    from uglspot.engine.infer import INFERENCE_JSON, model_directory, read_inference_settings
    from uglspot.engine.onnx_export import export_onnx, require
    from uglspot.engine.onnx_runtime import ONNX_FILE, compare_with_torch
    from uglspot.errors import UserError

    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    require("onnx", "ONNX export")
    if check:
        require("onnxruntime", "checking the export against PyTorch")
    run = Path(run)
    if not run.exists():
        raise UserError(f"{run}: no such folder; give a run folder of `uglspot train` or one of its checkpoints")
    out = Path(out) if out is not None else run / ONNX_FILE
    if out.is_dir():
        raise UserError(f"{out}: is a folder; give the path of the .onnx file to write, e.g. {out / ONNX_FILE}")
    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    directory = model_directory(run)
    settings = read_inference_settings(directory)
    model = load_model(directory)
    apply_head_choice(model, settings.head_choice, settings.classes, directory / INFERENCE_JSON)  # the graph's heads
    written = export_onnx(model, settings, out, frame_size, exporter, source=directory.name)
    difference = compare_with_torch(model, out, batch=1) if check else {}
    return ExportOutcome(out=out, model=model.config.name, classes=list(settings.classes), inputs=written.inputs,
                         outputs=written.outputs, frame_size=written.frame_size, clip_len=written.clip_len,
                         slots=written.slots, exporter=exporter, seconds=written.seconds,
                         size_bytes=out.stat().st_size, difference=difference)
