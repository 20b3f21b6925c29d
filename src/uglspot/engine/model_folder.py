"""Model folders: ``model.safetensors`` (weights) + ``config.json`` (the full
SpotterConfig and free metadata), so a model rebuilds from its folder alone
and loading never unpickles. Foreign ``.pt`` files are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uglspot.config import from_dict, to_dict
from uglspot.engine.runtime import unwrap
from uglspot.errors import UserError, brief
from uglspot.io import load_tensors, read_json, save_tensors, write_json_atomic
from uglspot.model.spotter import HEAD_NAMES, SpotterConfig, UGLSpotter

MODEL_FORMAT = "uglspot-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_model(model: nn.Module, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the weights and config of ``model`` into ``directory`` (created if
    needed); each file is replaced atomically. ``metadata`` (JSON data, e.g.
    class names) is stored beside the config. Returns the directory."""
    spotter = unwrap(model)
    if not isinstance(spotter, UGLSpotter):
        raise TypeError(f"expected a UGLSpotter, got {type(spotter).__name__}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory; choose a folder for the model")
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in spotter.state_dict().items()}
    save_tensors(state, directory / WEIGHTS_FILE, metadata={"format": MODEL_FORMAT})
    write_json_atomic(directory / CONFIG_FILE, {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "model": to_dict(spotter.config),
        "metadata": metadata or {},
    })
    return directory


def _read_config(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise UserError(f"{directory}: model folder not found (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    data = read_json(directory / CONFIG_FILE)
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise UserError(f"{directory / CONFIG_FILE}: not an uglspot model config (no \"format\": "
                        f"\"{MODEL_FORMAT}\"); E2E-Spot folders are converted with `uglspot import-e2e-spot`")
    if data.get("version") != FORMAT_VERSION:
        raise UserError(f"{directory / CONFIG_FILE}: model format version {data.get('version')!r}, this uglspot "
                        f"reads version {FORMAT_VERSION}; upgrade uglspot")
    return data


def load_model_config(directory: str | Path) -> SpotterConfig:
    directory = Path(directory)
    return from_dict(SpotterConfig, _read_config(directory).get("model"), where=str(directory / CONFIG_FILE))


def load_model_metadata(directory: str | Path) -> dict[str, Any]:
    return dict(_read_config(Path(directory)).get("metadata") or {})


def load_model(directory: str | Path, map_location: str | torch.device = "cpu") -> UGLSpotter:
    """Rebuild the model saved in ``directory`` and load its weights (strict)."""
    directory = Path(directory)
    config = load_model_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{weights}: weights file not found beside {CONFIG_FILE}")
    remedy = ("restore the file from a copy, use the run's other checkpoint (the folder that "
              "checkpoints/last.json or best.json names), or train the model again with `uglspot train`")
    state, _ = load_tensors(weights, "model weights file", remedy)
    model = UGLSpotter(config, load_pretrained=False)
    check_state_keys(model, state, str(weights))
    model.load_state_dict(state, strict=True)
    return model.to(map_location)


def load_init_weights(model: UGLSpotter, path: str | Path) -> None:
    """Start ``model`` from the weights of the model folder or run directory
    ``path`` (``train --init``: a trained, imported or converted model); every
    weight must fit, or one line names what differs."""
    from uglspot.engine.infer import model_directory

    directory = model_directory(path)
    source = load_model_config(directory)
    state, _ = load_tensors(directory / WEIGHTS_FILE, "model weights file",
                            "give --init a model folder or run directory that `uglspot train` or an import wrote")
    hint = (f"; it is a {source.name} model with {source.num_classes} classes: train model {source.name} "
            f"(model.name) on a dataset with its classes" if (source.name, source.num_classes) !=
            (model.config.name, model.config.num_classes) else "")
    try:
        check_state_keys(model, state, f"--init {path}")
    except UserError as exc:
        raise UserError(f"{exc}{hint}") from None
    model.load_state_dict(state, strict=True)


def check_state_keys(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse a state dict whose keys or shapes differ from the model's."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs "
                        f"{tuple(own[k].shape)})")
    if problems:
        raise UserError(f"{where}: weights do not fit the model in its config: {'; '.join(problems)}")


def load_foreign_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a foreign PyTorch checkpoint (a state dict, possibly
    under a "state_dict" / "model" key), read without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = brief(str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
        raise UserError(
            f"{path}: holds Python objects that only full unpickling can read, and unpickling an untrusted "
            f"file can run any code, so uglspot refuses ({first}). If you trust the file, re-save just its "
            f"tensors in a separate Python: torch.save(dict(state_dict), 'clean.pt')") from None
    except Exception as exc:  # any other failure: truncated, not a checkpoint, wrong format
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {brief(exc, 160)})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path}: expected a state dict (name → tensor), found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise UserError(f"{path}: expected only tensors in the state dict; {bad[0]!r} is not one "
                        f"(top-level keys: {', '.join(map(str, list(obj)[:8]))})")
    return dict(obj)


def check_inference_settings(settings: Any, where: str | Path) -> dict[str, Any]:
    """``inference.json`` as ``uglspot train`` writes it: refused in one line
    naming the file and the key when a key is missing or out of range."""
    import math

    def fail(message: str) -> UserError:
        return UserError(f"{where}: {message}; restore the file or use the run's other checkpoint")

    if not isinstance(settings, dict):
        raise fail(f"expected a JSON object of inference settings, found {type(settings).__name__}")

    def need(key: str, check: Any, expect: str, optional: bool = False) -> None:
        if key not in settings:
            raise fail(f"missing key {key!r} ({expect})")
        value = settings[key]
        if optional and value is None:
            return
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not check(value, number):
            raise fail(f"key {key!r} must be {expect}, found {value!r}")

    def whole(low: int) -> Any:
        return lambda v, number: number and isinstance(v, int) and low <= v < 2 ** 31

    classes = settings.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise fail(f"key 'classes' must be a non-empty list of class names, found {classes!r}")
    need("fps", lambda v, n: n and math.isfinite(v) and v > 0, "a frame rate > 0 or null", optional=True)
    need("height", whole(1), "an integer >= 1")
    need("width", whole(1), "an integer >= 1 or null", optional=True)
    need("clip_len", whole(1), "an integer >= 1")
    need("pad", whole(0), "an integer >= 0")
    need("threshold", lambda v, n: n and math.isfinite(v) and 0 <= v <= 1, "a number in [0, 1]")
    need("nms_window", whole(0), "an integer >= 0")
    need("batch_size", whole(1), "an integer >= 1")
    need("entities_per_event", whole(0), "an integer >= 0")
    need("crop", lambda v, n: isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 1 for x in v),
         "[height, width] or null", optional=True)
    if "entity_slots" in settings:
        need("entity_slots", whole(0), "an integer >= 0")
    if settings.get("class_thresholds") is not None:  # absent in checkpoints from before validation chose them
        need("class_thresholds", lambda v, n: isinstance(v, dict) and all(
            k in classes and isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 1
            for k, x in v.items()), "{class: a number in [0, 1]} over the model's classes")
        need("threshold_tolerance", whole(1), "an integer >= 1")
    if settings.get("head_choice") is not None:  # absent before validation chose the heads
        need("head_choice", lambda v, n: isinstance(v, dict) and set(v) == set(classes) and all(
            h in HEAD_NAMES for h in v.values()), f"{{class: one of {', '.join(HEAD_NAMES)}}} for every class")
    return settings
