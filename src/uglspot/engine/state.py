"""Training state beside the model checkpoint: everything a resumed run needs
besides the weights (optimiser, grad scaler, schedule step, sampler position,
random generators), without pickle.

A state is a nested structure of dicts, lists, tuples, numbers, strings and
tensors. ``save_state`` splits it into ``training_state.safetensors`` (every
tensor, under its path in the structure) and ``training_state.json`` (the
structure, with tensors replaced by their key and dict keys kept with their
type, since optimiser state is keyed by integers). Both are written atomically.

Checkpoint directories are made whole before they are published: a run dir
holds ``checkpoints/<name>-<step>/`` directories and a small pointer file
``checkpoints/<name>.json`` naming the complete one; the pointer is replaced
atomically after the directory is fsynced, so a run killed at any moment
resumes from the last complete checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from uglspot.errors import UserError
from uglspot.io import atomic_path, read_json, write_json_atomic

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


def flatten_state(state: Any, prefix: str = "s") -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``state`` into named tensors and a JSON-able skeleton that names them."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu").contiguous()
            return {"__tensor__": path}
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise TypeError(f"{path}: dict key {key!r} is neither str nor int")
                items.append([key, walk(item, f"{path}.{key}")])
            return {"__dict__": items}
        if isinstance(value, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"{path}: cannot store a {type(value).__name__} in the training state")

    return tensors, walk(state, prefix)


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        return {key: unflatten_state(value, tensors) for key, value in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def save_state(state: dict[str, Any], directory: str | Path) -> None:
    """Write ``state`` into ``directory`` as safetensors + JSON (atomic per file)."""
    directory = Path(directory)
    tensors, skeleton = flatten_state(state)
    with atomic_path(directory / STATE_TENSORS) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(directory / STATE_JSON, skeleton, indent=None)


def load_state(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not (directory / STATE_JSON).is_file() or not (directory / STATE_TENSORS).is_file():
        raise UserError(f"{directory}: no training state ({STATE_JSON} + {STATE_TENSORS}); "
                        "resume needs a checkpoint written by `uglspot train`")
    skeleton = read_json(directory / STATE_JSON)
    return unflatten_state(skeleton, load_file(str(directory / STATE_TENSORS)))


def publish(checkpoints: Path, name: str, directory: Path, keep: set[Path] = frozenset()) -> None:
    """Point ``checkpoints/<name>.json`` at the complete ``directory`` and
    remove the directories ``name`` pointed at before (unless in ``keep``)."""
    pointer = checkpoints / f"{name}.json"
    previous = resolve(checkpoints, name, missing_ok=True)
    write_json_atomic(pointer, {"directory": directory.name})
    if previous is not None and previous != directory and previous not in keep:
        shutil.rmtree(previous, ignore_errors=True)


def resolve(checkpoints: Path, name: str, missing_ok: bool = False) -> Path | None:
    """The complete checkpoint directory ``checkpoints/<name>.json`` points at."""
    pointer = checkpoints / f"{name}.json"
    if not pointer.is_file():
        if missing_ok:
            return None
        raise UserError(f"{checkpoints}: no '{name}' checkpoint yet ({pointer.name} missing); "
                        "was the run stopped before its first checkpoint?")
    target = checkpoints / str(read_json(pointer)["directory"])
    if not target.is_dir():
        if missing_ok:
            return None
        raise UserError(f"{pointer}: points at {target.name}, which is missing; the run directory is damaged")
    return target


def remove_unpublished(checkpoints: Path) -> None:
    """Delete checkpoint directories no pointer names (left by a killed run)."""
    if not checkpoints.is_dir():
        return
    named = {resolve(checkpoints, p.stem, missing_ok=True) for p in checkpoints.glob("*.json")}
    for path in checkpoints.iterdir():
        if path.is_dir() and path not in named:
            shutil.rmtree(path, ignore_errors=True)
