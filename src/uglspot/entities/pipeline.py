"""Entity detection over whole videos into entity stores: decode each video
at the target rate (in a background thread, ahead of the detector), run a
backend (``uglspot.entities.backends``) on every frame, write one store per
video, skip videos already done with the same settings, and go on past a
bad video. Also the one mapping between detector settings and a store's
``StoreKey`` (:func:`store_key`, and its inverse :func:`config_for_stores`).
This is the per-video work of ``uglspot detect`` and ``uglspot spot --detector``."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from uglspot.entities.backends import Detections, EntityDetector, create_detector
from uglspot.entities.detector_settings import DEFAULT_MODELS, FEATURE_KINDS, DetectorConfig
from uglspot.errors import UserError


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
