"""A decoded-once frame store for training: any clip without decoding video.

Layout of a cache directory (one folder per video, named ``safe_name(id)``)::

    DIR/<video>/frames.bin   JPEG images back to back ("jpeg"), or raw uint8
                             (T, 3, H, W) in C order ("raw")
    DIR/<video>/index.npy    int64 (T + 1,) byte offsets of each JPEG in frames.bin
    DIR/<video>/crc32.npy    uint32 (T,) CRC-32 of each frame's bytes, checked at every read
    DIR/<video>/meta.json    what made it; written last, so its presence means done;
                             holds the size of frames.bin and the sha256 of index.npy
                             and crc32.npy, checked when the video is opened

A flipped bit in frames.bin therefore stops the read that meets it, naming the
video and the frame (a JPEG decoder would only warn, and decode another image);
``FrameCache.verify`` checks every frame of a video at once. Caches written
before the CRCs have no crc32.npy and are read as they are.

Why JPEG in one file: a raw uint8 frame of 398x224 is 267 KB, so one 45-minute
half at 25 fps would be 18 GB; at quality 90 the same frame is ~10-25 KB
(see ``benchmarks/decode_speed.py``). Keeping the JPEGs in one file with an
offset index reads a 100-frame clip as one contiguous ``read`` of a memory map
(no directory of 100,000 small files, no ``open`` per frame), and decoding 100
small JPEGs is cheap (and can run on the GPU with ``torchvision.io.decode_jpeg``).
``raw`` is there for tiny frames or when CPU time matters more than disk.

``FrameCache`` also reads E2E-Spot frame folders (``DIR/<video>/000000.jpg``),
so users can bring what they already extracted.
"""

from __future__ import annotations

import json
import os
import zlib
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from uglspot.errors import UserError, brief
from uglspot.io import atomic_path, file_digest, inside, own_folder, safe_name, write_json_atomic

CACHE_VERSION = 1
Format = Literal["jpeg", "raw"]
_E2E_FRAME = re.compile(r"^\d{6}\.jpg$")


@dataclass(frozen=True)
class CacheSettings:
    fps: float | None
    size: tuple[int, int] | int | None  # (width, height), a target height, or native
    format: Format = "jpeg"
    quality: int = 90


def _decode_jpegs(blobs: list[torch.Tensor]) -> list[torch.Tensor]:
    with warnings.catch_warnings():  # torchvision 0.29 announces a move to TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

        return decode_jpeg(blobs, mode=ImageReadMode.RGB)


def _encode_jpegs(images: list[torch.Tensor], quality: int) -> list[torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import encode_jpeg

        return encode_jpeg(images, quality=quality)


class FrameCache:
    """Reads frames from a cache directory written by ``uglspot frames`` or
    from E2E-Spot frame folders. Safe to pickle into DataLoader workers (open
    memory maps are not carried over)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise UserError(f"{self.directory}: frame cache directory not found; "
                            "create it with `uglspot frames VIDEO... --out DIR`")
        self._open: dict[str, tuple] = {}

    def __getstate__(self) -> dict:
        return {"directory": self.directory, "_open": {}}

    def _entry(self, video_id: str) -> tuple:
        entry = self._open.get(video_id)
        if entry is None:
            entry = self._load(video_id)
            self._open[video_id] = entry
        return entry

    def _load(self, video_id: str) -> tuple:
        ours = self.directory / safe_name(video_id)
        meta_path = ours / "meta.json"
        if meta_path.is_file():
            meta = _read_meta(meta_path)
            width, height, count = meta["width"], meta["height"], meta["num_frames"]
            _check_data(ours, meta)
            if meta["format"] == "raw":
                data = np.memmap(ours / "frames.bin", dtype=np.uint8, mode="r",
                                 shape=(count, 3, height, width)) if count else None
                return ("raw", data, None, count, (height, width), _load_crcs(ours, meta))
            offsets = np.load(ours / "index.npy", mmap_mode="r", allow_pickle=False)
            data = np.memmap(ours / "frames.bin", dtype=np.uint8, mode="r") if count else None
            return ("jpeg", data, offsets, count, (height, width), _load_crcs(ours, meta))
        folder = inside(self.directory, video_id)
        if folder.is_dir():
            names = sorted(n for n in os.listdir(folder) if _E2E_FRAME.match(n))
            if names and names[0] == "000000.jpg":
                first = _decode_jpegs([_read_bytes(folder / names[0])])[0]
                return ("folder", folder, None, len(names), tuple(first.shape[1:]), None)
        raise UserError(f"{video_id}: no cached frames in {self.directory} (looked for "
                        f"{meta_path} and {folder}/000000.jpg); run `uglspot frames` on the video first")

    def num_frames(self, video_id: str) -> int:
        return self._entry(video_id)[3]

    def frame_size(self, video_id: str) -> tuple[int, int]:
        """(height, width) of the stored frames."""
        return self._entry(video_id)[4]

    def meta(self, video_id: str) -> dict:
        """The meta.json of a cached video ({} for an E2E-Spot folder)."""
        path = self.directory / safe_name(video_id) / "meta.json"
        return _read_meta(path) if path.is_file() else {}

    def videos(self) -> list[str]:
        """Ids of the videos in the cache (our format only)."""
        return [_read_meta(meta)["video"] for meta in sorted(self.directory.glob("*/meta.json"))]

    def read(self, video_id: str, start: int, count: int) -> torch.Tensor:
        """Frames ``start .. start+count-1`` as uint8 (count, 3, H, W); frames
        outside the video are zeros."""
        kind, data, offsets, total, (height, width), crcs = self._entry(video_id)
        # numpy does the copies: torch's multi-threaded small copies stall on a busy machine
        out = np.zeros((count, 3, height, width), dtype=np.uint8)
        lo, hi = max(start, 0), min(start + count, total)
        if lo >= hi:
            return torch.from_numpy(out)
        if kind == "raw":
            out[lo - start:hi - start] = data[lo:hi]
            if crcs is not None:
                self._check_crcs(video_id, lo, [out[k] for k in range(lo - start, hi - start)], crcs)
            return torch.from_numpy(out)
        if kind == "jpeg":
            bounds = np.asarray(offsets[lo:hi + 1], dtype=np.int64)
            chunk = torch.from_numpy(np.array(data[bounds[0]:bounds[-1]]))  # one contiguous read
            rel = (bounds - bounds[0]).tolist()
            blobs = [chunk[rel[k]:rel[k + 1]] for k in range(hi - lo)]
            if crcs is not None:
                self._check_crcs(video_id, lo, [b.numpy() for b in blobs], crcs)
        else:
            blobs = [_read_bytes(data / f"{i:06d}.jpg") for i in range(lo, hi)]
        for k, image in enumerate(_decode_jpegs(blobs)):
            out[lo - start + k] = image.numpy()
        return torch.from_numpy(out)


    def _check_crcs(self, video_id: str, first: int, frames: list[np.ndarray], crcs: np.ndarray) -> None:
        for k, frame in enumerate(frames):
            if zlib.crc32(frame) != int(crcs[first + k]):
                frames_bin = self.directory / safe_name(video_id) / "frames.bin"
                raise UserError(f"{frames_bin}: damaged frame cache (frame {first + k} of {video_id} is not what "
                                f"was written: its CRC-32 differs); {_REBUILD}")

    def verify(self, video_id: str, chunk: int = 256) -> None:
        """Read and check every frame of a cached video (its CRC-32s, or that
        it decodes for a cache without them); a damaged one raises UserError
        naming the frame."""
        total = self.num_frames(video_id)
        for start in range(0, total, chunk):
            self.read(video_id, start, min(chunk, total - start))


_REBUILD = "delete that folder and run `uglspot frames` on the video again"


def _load_crcs(folder: Path, meta: dict) -> np.ndarray | None:
    """The per-frame CRC-32s (checked against meta.json), or None for a cache written before them."""
    recorded = meta.get("crc32_sha256")
    if recorded is None:
        return None
    path = folder / "crc32.npy"
    if not path.is_file() or file_digest(path) != recorded:
        problem = "missing" if not path.is_file() else "its sha256 differs from meta.json"
        raise UserError(f"{path}: damaged frame cache checksums ({problem}); {_REBUILD}")
    crcs = np.load(path, allow_pickle=False)
    if crcs.dtype != np.uint32 or crcs.shape != (meta["num_frames"],):
        raise UserError(f"{path}: damaged frame cache checksums (shape {crcs.shape}, {crcs.dtype}; expected "
                        f"({meta['num_frames']},) uint32); {_REBUILD}")
    return crcs
_META_KEYS = {"video": str, "format": str, "width": int, "height": int, "num_frames": int}


def _read_meta(path: Path) -> dict:
    """A cached video's meta.json, checked: one line naming it when garbled."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: damaged frame cache metadata ({type(exc).__name__}); {_REBUILD}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: damaged frame cache metadata (not a JSON object); {_REBUILD}")
    for key, kind in _META_KEYS.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and not 0 <= value < 2 ** 40):
            raise UserError(f"{path}: damaged frame cache metadata ({key!r} is {value!r}); {_REBUILD}")
    if meta["format"] not in ("jpeg", "raw") or meta["width"] < 1 or meta["height"] < 1:
        raise UserError(f"{path}: damaged frame cache metadata (format {meta['format']!r}, size "
                        f"{meta['width']}x{meta['height']}); {_REBUILD}")
    return meta


def _check_data(folder: Path, meta: dict) -> None:
    """frames.bin has the size meta.json recorded (and, raw, the size its
    frames need); index.npy has the checksum recorded and offsets that fit."""
    frames, index = folder / "frames.bin", folder / "index.npy"
    size = frames.stat().st_size if frames.is_file() else None
    expected = meta.get("bytes")
    if meta["format"] == "raw":
        expected = meta["num_frames"] * 3 * meta["height"] * meta["width"]
    if size is None or (expected is not None and size != expected):
        raise UserError(f"{frames}: damaged frame cache ({'missing' if size is None else f'{size} bytes'}, "
                        f"expected {expected}); {_REBUILD}")
    if meta["format"] != "jpeg":
        return
    if not index.is_file():
        raise UserError(f"{index}: frame cache index missing; {_REBUILD}")
    recorded = meta.get("index_sha256")
    if recorded is not None and file_digest(index) != recorded:
        raise UserError(f"{index}: damaged frame cache index (checksum differs from meta.json); {_REBUILD}")
    try:
        offsets = np.load(index, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{index}: damaged frame cache index ({brief(exc, 80)}); {_REBUILD}") from None
    if (offsets.dtype != np.int64 or offsets.shape != (meta["num_frames"] + 1,) or offsets[0] != 0
            or offsets[-1] != size or (np.diff(offsets) <= 0).any()):
        raise UserError(f"{index}: damaged frame cache index (offsets do not fit {meta['num_frames']} frames "
                        f"in {size} bytes); {_REBUILD}")


def _read_bytes(path: Path) -> torch.Tensor:
    return torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)


def is_done(folder: Path, source: Path, settings: CacheSettings) -> bool:
    """True if ``folder`` holds a complete cache of ``source`` with these settings."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    stat = source.stat()
    return (meta.get("complete") and meta.get("version") == CACHE_VERSION
            and meta.get("source_bytes") == stat.st_size and meta.get("source_mtime") == stat.st_mtime
            and meta.get("settings") == json.loads(json.dumps(asdict(settings))))


def build_cache(source: str | Path, out_dir: str | Path, video_id: str, settings: CacheSettings,
                progress: Callable[[int], None] | None = None, batch_size: int = 32) -> dict:
    """Decode ``source`` once into ``out_dir/safe_name(video_id)``; returns its meta.

    A damaged video keeps the frames before the damage (``complete: false``
    and the error in ``damage``) and the DecodeError is raised after writing.
    """
    from uglspot.video import DecodeError, VideoReader

    source = Path(source)
    folder = Path(out_dir) / safe_name(video_id)
    reader = VideoReader(source, fps=settings.fps, size=settings.size)
    own_folder(folder)
    (folder / "meta.json").unlink(missing_ok=True)  # mark not done before touching the data
    offsets = [0]
    crcs: list[int] = []
    written = 0
    damage: DecodeError | None = None
    with atomic_path(folder / "frames.bin") as tmp, open(tmp, "wb") as handle:
        try:
            for _, batch in reader.iter_batches(batch_size=batch_size):
                if settings.format == "raw":
                    frames = batch.numpy()
                    handle.write(frames.tobytes())
                    crcs.extend(zlib.crc32(np.ascontiguousarray(frame)) for frame in frames)
                else:
                    for blob in _encode_jpegs(list(batch), settings.quality):
                        data = blob.numpy()
                        handle.write(data.tobytes())
                        offsets.append(offsets[-1] + blob.numel())
                        crcs.append(zlib.crc32(data))
                written += len(batch)
                if progress:
                    progress(len(batch))
        except DecodeError as exc:
            damage = exc
        handle.flush()
    if settings.format == "jpeg":
        with atomic_path(folder / "index.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(offsets, dtype=np.int64), allow_pickle=False)
    with atomic_path(folder / "crc32.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(crcs, dtype=np.uint32), allow_pickle=False)
    stat = source.stat()
    meta = {
        "version": CACHE_VERSION, "video": video_id, "source": str(source),
        "source_bytes": stat.st_size, "source_mtime": stat.st_mtime,
        "settings": json.loads(json.dumps(asdict(settings))), "format": settings.format,
        "fps": reader.fps if reader.fps is not None else reader.info.fps,
        "width": reader.width, "height": reader.height, "num_frames": written,
        "bytes": (folder / "frames.bin").stat().st_size,
        "index_sha256": file_digest(folder / "index.npy") if settings.format == "jpeg" else None,
        "crc32_sha256": file_digest(folder / "crc32.npy"),
        "complete": damage is None, "damage": None if damage is None else str(damage),
    }
    write_json_atomic(folder / "meta.json", meta)
    if damage is not None:
        raise damage
    return meta
