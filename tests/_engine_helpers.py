"""A tiny labelled dataset written for engine tests: real PyAV videos, E2E-Spot
labels and entity stores, plus a run configuration small enough for CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from uglspot.data.augment import AugmentConfig
from uglspot.data.labels import Event, Video, write_e2e_labels
from uglspot.engine.config import DataConfig, InferConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from uglspot.engine.model_folder import save_model
from uglspot.io import write_json_atomic, write_text_atomic
from uglspot.model.spotter import create_model

CLASSES = ["flash", "red"]
VOCABULARY = ["ball", "player"]
FPS = 10
WIDTH, HEIGHT = 48, 32


@dataclass
class TinyDataset:
    root: Path
    labels: Path
    videos: Path
    entities: Path
    splits: dict[str, list[Video]]


def square_box(frame: int, num_frames: int) -> tuple[float, float, float, float]:
    """The moving square's box (xyxy in [0, 1]) at ``frame``: left to right."""
    x = 2 + int((WIDTH - 14) * frame / max(1, num_frames - 1))
    return x / WIDTH, 10 / HEIGHT, (x + 12) / WIDTH, 22 / HEIGHT


def render(num_frames: int, events: list[Event], seed: int) -> np.ndarray:
    """(T, H, W, 3) uint8: noise, a grey square moving right, a white frame
    for 'flash' events, a red square for 'red' events."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, size=(num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    marks = {e.frame: e.label for e in events}
    for t in range(num_frames):
        x1, y1, x2, y2 = square_box(t, num_frames)
        ys, xs = slice(round(y1 * HEIGHT), round(y2 * HEIGHT)), slice(round(x1 * WIDTH), round(x2 * WIDTH))
        frames[t, ys, xs] = (200, 200, 200)
        if marks.get(t) == "flash":
            frames[t] = 255
        elif marks.get(t) == "red":
            frames[t, ys, xs] = (255, 0, 0)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "g": "8"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_entities(store_dir: Path, video: Video) -> None:
    from uglspot.entities.store import EntityStore, StoreKey

    detections = []
    for t in range(video.num_frames):
        box = np.array([square_box(t, video.num_frames), [0.0, 0.0, 0.2, 0.3]], dtype=np.float32)
        detections.append({"boxes": box, "cls": np.array([0, 1], dtype=np.int64),
                           "score": np.array([0.9, 0.4], dtype=np.float32)})
    key = StoreKey(video=video.video, detector="test", model="none", prompt=tuple(VOCABULARY),
                   box_threshold=0.0, text_threshold=0.0, max_per_frame=len(VOCABULARY), fps=None, size=None)
    EntityStore.write(store_dir, key, video.num_frames, detections)


def make_dataset(root: Path, videos_per_split: dict[str, int] | None = None, num_frames: int = 40,
                 with_entities: bool = True) -> TinyDataset:
    from uglspot.entities.store import store_path

    videos_per_split = videos_per_split or {"train": 3, "val": 1, "test": 2}
    labels, video_dir, entity_dir = root / "labels", root / "videos", root / "entities"
    write_text_atomic(labels / "class.txt", "\n".join(CLASSES) + "\n")
    splits: dict[str, list[Video]] = {}
    seed = 0
    for split, count in videos_per_split.items():
        videos = []
        for i in range(count):
            seed += 1
            rng = np.random.default_rng(seed)
            frames_at = sorted(rng.choice(np.arange(4, num_frames - 4), size=4, replace=False).tolist())
            events = [Event(int(f), CLASSES[j % 2]) for j, f in enumerate(frames_at)]
            video = Video(f"{split}_{i}", num_frames, float(FPS), events, WIDTH, HEIGHT)
            write_video(video_dir / f"{video.video}.mp4", render(num_frames, events, seed))
            if with_entities:
                write_entities(store_path(entity_dir, video.video), video)
            videos.append(video)
        write_e2e_labels(videos, labels / f"{split}.json")
        splits[split] = videos
    return TinyDataset(root, labels, video_dir, entity_dir, splits)


def tiny_config(data: TinyDataset, out: Path, **train: object) -> RunConfig:
    """ugl_rny002 on 8-frame clips of 32x32 crops: a few tenths of a second per step on one core."""
    train_options = {"epochs": 2, "batch_size": 2, "epoch_frames": 48, "amp": "off", "val_every": 1,
                     "log_every": 1, "device": "cpu", "tensorboard": False, "deterministic": True, **train}
    return RunConfig(
        dataset="tiny", out=str(out),
        data=DataConfig(labels=str(data.labels), videos=str(data.videos), entities=str(data.entities),
                        fps=None, height=HEIGHT, clip_len=8, pad=2, entity_slots=4, workers=0),
        model=ModelConfig(name="ugl_rny002", options={"num_entity_classes": len(VOCABULARY)}),
        augment=AugmentConfig(crop=[32, 32]),
        optim=OptimConfig(lr=1e-3, warmup_epochs=1, grad_clip=1.0),
        train=TrainConfig(**train_options),
        infer=InferConfig(threshold=0.01, nms_window=1, batch_size=2),
    )


def link_copy(source: Path, target: Path) -> Path:
    """A copy of a run folder made of hard links (fast, no disk); change its
    files only with ``rewrite`` so the original stays intact."""
    import os
    import shutil

    shutil.copytree(source, target, copy_function=os.link)
    return target


def rewrite(path: Path, data: bytes | str) -> None:
    """Replace a file's content without touching other hard links to it."""
    path.unlink()
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def saved_global_model(directory: Path) -> Path:
    """A randomly initialised e2e_rny002 (no entities) saved as `uglspot
    train` saves a model, decoding at height HEIGHT with each video's aspect
    ratio."""
    torch.manual_seed(0)
    save_model(create_model("e2e_rny002", len(CLASSES), clip_len=8), directory)
    write_json_atomic(directory / "inference.json", {
        "dataset": "tiny", "classes": CLASSES, "fps": FPS, "height": HEIGHT, "width": None, "crop": None,
        "clip_len": 8, "pad": 2, "threshold": 0.0, "nms_window": 1, "batch_size": 2, "entities_per_event": 3,
        "entity_slots": 4, "entities": None})
    return directory
