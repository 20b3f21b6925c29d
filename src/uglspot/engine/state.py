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

A pointer is read from disk, so it is checked before anything is opened or
removed: a JSON object whose ``directory`` is a bare name of the form
``<name>-e<epoch>-s<step>`` inside ``checkpoints/``. Removal only ever touches
directories of that form inside ``checkpoints/``: the ones the run made.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from uglspot.errors import UserError
from uglspot.io import load_tensors, read_json, save_tensors, write_json_atomic

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
SKELETON_DIGEST = "uglspot_state_json_sha256"  # metadata key of the tensors file
POINTERS = ("last", "best")
TRAINING_STATE_KEYS = {"optimizer": dict, "scaler": dict, "progress": dict, "rng": list, "world_size": int}
_CHECKPOINT_DIR = re.compile(r"^(last|best)-e\d{4,}-s\d{8,}$")
_POINTER_TMP = re.compile(r"^\.(last|best)\.json\.[A-Za-z0-9_]+\.tmp$")  # io.atomic_path's temporary name


def checkpoint_dir_name(name: str, epoch: int, step: int) -> str:
    """The one naming rule of checkpoint directories (pointers are checked against it)."""
    return f"{name}-e{epoch:04d}-s{step:08d}"


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
    save_tensors(tensors, directory / STATE_TENSORS, {SKELETON_DIGEST: skeleton_digest(skeleton)})
    write_json_atomic(directory / STATE_JSON, skeleton, indent=None)


def skeleton_digest(skeleton: Any) -> str:
    """sha256 of the skeleton's canonical JSON: kept in the tensors file, so an
    edited ``training_state.json`` (a step, a learning-rate count) is refused."""
    text = json.dumps(skeleton, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load_state(directory: str | Path, required: dict[str, type] | None = None) -> dict[str, Any]:
    """The state ``save_state`` wrote, checked against its checksum; ``required``
    maps keys the caller needs to their type (a damaged state is one line)."""
    directory = Path(directory)
    if not (directory / STATE_JSON).is_file() or not (directory / STATE_TENSORS).is_file():
        raise UserError(f"{directory}: no training state ({STATE_JSON} + {STATE_TENSORS}); "
                        "resume needs a checkpoint written by `uglspot train`")
    remedy = ("this checkpoint cannot be resumed: restore the file, or start the run again in another --out "
              "(the best checkpoint's weights are still usable)")
    tensors, metadata = load_tensors(directory / STATE_TENSORS, "training state", remedy)
    skeleton = read_json(directory / STATE_JSON)
    expected = metadata.get(SKELETON_DIGEST)  # states from before the checksum have none
    if expected is not None and skeleton_digest(skeleton) != expected:
        raise UserError(f"{directory / STATE_JSON}: damaged training state (it differs from what training wrote: "
                        f"its checksum in {STATE_TENSORS} does not match); {remedy}")
    try:
        state = unflatten_state(skeleton, tensors)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{directory / STATE_JSON}: damaged training state ({type(exc).__name__}: {exc}); "
                        f"{remedy}") from None
    if not isinstance(state, dict):
        raise UserError(f"{directory / STATE_JSON}: damaged training state (not a mapping); {remedy}")
    for key, kind in (required or {}).items():
        if not isinstance(state.get(key), kind):
            raise UserError(f"{directory / STATE_JSON}: damaged training state (no {key!r} {kind.__name__}); "
                            f"{remedy}")
    return state


def publish(checkpoints: Path, name: str, directory: Path, keep: set[Path] = frozenset()) -> None:
    """Point ``checkpoints/<name>.json`` at the complete ``directory`` and
    remove the directory ``name`` pointed at before (unless in ``keep``)."""
    directory = Path(directory)
    if directory.parent != checkpoints or not _CHECKPOINT_DIR.match(directory.name):
        raise ValueError(f"{directory}: not a checkpoint directory of {checkpoints}")
    previous = resolve(checkpoints, name, missing_ok=True)
    write_json_atomic(checkpoints / f"{name}.json", {"directory": directory.name})
    if previous is not None and previous != directory and previous not in keep:
        shutil.rmtree(previous, ignore_errors=True)


def _pointer_target(checkpoints: Path, name: str) -> Path:
    """The directory named by ``checkpoints/<name>.json``, refused unless it
    is a checkpoint directory name inside ``checkpoints``."""
    pointer = checkpoints / f"{name}.json"
    data = read_json(pointer)
    target = data.get("directory") if isinstance(data, dict) else None
    if not isinstance(target, str) or not _CHECKPOINT_DIR.match(target):
        raise UserError(f"{pointer}: not a checkpoint pointer (expected {{\"directory\": \"{name}-eNNNN-sNNNNNNNN\"}}, "
                        f"a folder inside {checkpoints.name}/), found {str(data)[:80]!r}; delete it to resume from "
                        "the other checkpoint, or restore it")
    return checkpoints / target


def resolve(checkpoints: Path, name: str, missing_ok: bool = False) -> Path | None:
    """The complete checkpoint directory ``checkpoints/<name>.json`` points at
    (None with ``missing_ok`` when there is no pointer or no such directory)."""
    pointer = checkpoints / f"{name}.json"
    if not pointer.is_file():
        if missing_ok:
            return None
        raise UserError(f"{checkpoints}: no '{name}' checkpoint yet ({pointer.name} missing); "
                        "was the run stopped before its first checkpoint?")
    target = _pointer_target(checkpoints, name)
    if not target.is_dir():
        if missing_ok:
            return None
        raise UserError(f"{pointer}: points at {target.name}, which is missing; the run directory is damaged: "
                        f"restore that folder, or delete {pointer.name} to use the other checkpoint")
    return target


def remove_unpublished(checkpoints: Path) -> None:
    """Delete checkpoint directories no pointer names (left by a killed run);
    only directories named as this module names them are ever touched."""
    if not checkpoints.is_dir():
        return
    named = {resolve(checkpoints, name, missing_ok=True) for name in POINTERS}
    for path in checkpoints.iterdir():
        if path.is_dir() and not path.is_symlink() and _CHECKPOINT_DIR.match(path.name) and path not in named:
            shutil.rmtree(path, ignore_errors=True)
        elif _POINTER_TMP.match(path.name) and path.is_file():  # a pointer write the kill interrupted
            path.unlink(missing_ok=True)
