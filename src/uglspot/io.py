"""Small file helpers shared by every module that writes: atomic writes
(with the permissions a plain write would give), JSON with located errors,
safe output names from video ids, ids resolved only inside their folder, and
safetensors files that carry a checksum of their tensors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from uglspot.errors import UserError, brief


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; whatever keeps it from being read (missing,
    a folder, a path through a file, no permission, not UTF-8) is one line
    naming the file and ``what`` it should be."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a {what}") from None
    except NotADirectoryError:
        raise UserError(f"{path}: a part of this path is a file, not a folder; expected a {what}") from None
    except PermissionError:
        raise UserError(f"{path}: no permission to read this {what}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text at byte {exc.start}; is this a {what}? Save it as UTF-8") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    path = Path(path)
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); fix the file and retry"
        ) from None


def own_folder(path: str | Path) -> Path:
    """Create (or reuse) a folder uglspot writes into below an output folder
    (one per video, one per checkpoint), refusing a symbolic link in its
    place: files written there would land in the link's target, replacing
    what the user keeps there. The output folder given may itself be a link."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link (to {os.readlink(path)}); uglspot writes into folders of its "
                        "own and never through a link: remove the link, or choose another output folder")
    path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        raise UserError(f"{path}: is not a folder; move it away or choose another output folder")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it
    over `path`, so a reader never sees a half-written file and a killed run
    leaves the old file (or none) in place."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, but a file is written here; move the folder away or choose "
                        "another output path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{path}: a part of this path is a file, not a folder; choose another output path") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    mode = _plain_write_mode(path)
    try:  # mkstemp makes the file 0600; give it the mode open(path, "w") would have
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fchmod(handle.fileno(), mode)  # again: a writer may have replaced the file (safetensors makes it 0600)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _plain_write_mode(path: Path) -> int:
    """The mode a plain write of ``path`` gives: an existing file keeps its
    own, a new one gets 0666 less the process umask."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):  # Linux: read it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def refuse_overwrite(output: str | Path, *inputs: str | Path) -> None:
    """Raise if `output` is one of the input files: nothing the user had is lost."""
    out = Path(output).resolve()
    for item in inputs:
        if Path(item).resolve() == out:
            raise UserError(f"{output}: output would overwrite an input file; choose another output path")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(video_id: str) -> str:
    """A file-system-safe name for a video id: path separators and other
    characters become '_', and it can never be '.', '..' or empty.

    Different ids may map to the same name only if they differ in unsafe
    characters; callers that write many videos check for such collisions.
    """
    name = _UNSAFE.sub("_", video_id).strip("._")
    return name or "video"


def inside(root: str | Path, relative: str, what: str = "video id") -> Path:
    """``root / relative`` for a name read from a file (a video id in labels
    or predictions): refused, in one line naming it, when it is absolute or
    climbs out of ``root`` with ``..``, so a label file never makes uglspot
    read (or write) outside the folder it was given."""
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or relative.startswith(("/", "\\")) or ".." in parts \
            or ".." in relative.replace("\\", "/").split("/"):
        raise UserError(f"{what} {relative!r}: must be a relative name inside {root} (no absolute path, "
                        "no '..'); fix the id in the labels or predictions file")
    return Path(root) / relative


# --- safetensors with a checksum ---------------------------------------------------------------

DIGEST_KEY = "uglspot_sha256"
METADATA_DIGEST_KEY = "uglspot_metadata_sha256"  # of the other metadata (a store's header, a state's checksum)


def metadata_digest(metadata: Mapping[str, str]) -> str:
    """sha256 of a file's string metadata, checksum entries left out."""
    kept = {k: v for k, v in metadata.items() if k not in (DIGEST_KEY, METADATA_DIGEST_KEY)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def check_metadata(path: str | Path, metadata: Mapping[str, str], what: str, remedy: str) -> None:
    """Refuse metadata that differs from what was written (cheap: no tensor is
    read). Files written before this checksum have none and pass."""
    expected = metadata.get(METADATA_DIGEST_KEY)
    if expected is not None and metadata_digest(metadata) != expected:
        raise UserError(f"{path}: {what} is damaged (its header differs from what was written: the checksum "
                        f"does not match); {remedy}")


def tensor_digest(tensors: Mapping[str, Any]) -> str:
    """sha256 over every tensor (torch or numpy) in name order: name, dtype,
    shape and raw bytes. Independent of the file layout, so a reader checks
    the values it actually loaded."""
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]
        if hasattr(value, "detach"):  # a torch tensor: its bytes whatever the dtype (bf16 has no numpy twin)
            import torch

            flat = value.detach().to("cpu").contiguous().reshape(-1)
            dtype, shape = str(value.dtype).removeprefix("torch."), tuple(value.shape)
            data = flat.view(torch.uint8).numpy() if flat.numel() else np.zeros(0, np.uint8)
        else:
            array = np.ascontiguousarray(value)
            dtype, shape, data = array.dtype.name, array.shape, array.reshape(-1).view(np.uint8)
        digest.update(f"{name}\0{dtype}\0{shape}\0".encode())
        digest.update(memoryview(data))
    return digest.hexdigest()


def save_tensors(tensors: Mapping[str, Any], path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write a safetensors file atomically with the checksum of its tensors in
    its metadata (torch tensors or numpy arrays, not mixed)."""
    meta = {**(metadata or {}), DIGEST_KEY: tensor_digest(tensors)}
    meta[METADATA_DIGEST_KEY] = metadata_digest(meta)
    numpy = not any(hasattr(v, "detach") for v in tensors.values())
    if numpy:
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=meta)


def load_tensors(path: str | Path, what: str, remedy: str, framework: str = "pt") -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors on the CPU, metadata) of a safetensors file, checked against
    the checksum written with it. A file that cannot be read, or whose
    tensors differ from what was written (a torn write, a flipped sector),
    is one line naming the file, ``what`` it is and the ``remedy``. Files from
    before checksums were written have none and are read as they are."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; {remedy}")
    try:
        with safe_open(str(path), framework=framework) as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = brief(exc, 160) or type(exc).__name__
        raise UserError(f"{path}: unreadable {what} ({reason}); {remedy}") from None
    check_metadata(path, metadata, what, remedy)
    expected = metadata.get(DIGEST_KEY)
    if expected is not None and tensor_digest(tensors) != expected:
        raise UserError(f"{path}: {what} is damaged (its checksum does not match its contents); {remedy}")
    return tensors, metadata


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
