"""Seconds per stage of ``uglspot spot`` on a generated broadcast-like video,
and training frames/s against data-loader frames/s at a small demo config.

Prints one JSON line per figure. Run on CPU with a reduced video:

    PYTHONPATH=src python benchmarks/pipeline_speed.py --minutes 0.5 --device cpu

and on a GPU with the full 10-minute 25 fps 720p video (the default):

    python benchmarks/pipeline_speed.py --device cuda

Stages: ``decode`` (PyAV at the model's rate and size), ``detect`` (with
``--detector [--detector-model DIR]``: the same per-video detection as
``uglspot detect`` and ``uglspot spot --detector``, store written), the entity
store read, ``model`` (sliding windows, frames already
decoded), ``post`` (stitching, candidates, NMS, entity look-up). The
training figures come from the real training loop (``engine.train``) and
from iterating its DataLoader alone over the same clips; their ratio is the
loader's headroom (it should be at least 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from uglspot.data.augment import AugmentConfig
from uglspot.data.clips import epoch_clips
from uglspot.data.dataset import ClipDataset, EntityWindows, VideoFrames
from uglspot.entities.store import store_path as entity_store_path
from uglspot.data.labels import Event, Video, write_e2e_labels
from uglspot.engine.config import DataConfig, InferConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from uglspot.io import write_text_atomic


VOCABULARY = ("red card", "yellow card", "goal", "referee", "ball")


def emit(figure: str, value: float | None, unit: str, **extra: object) -> None:
    print(json.dumps({"figure": figure, "value": None if value is None else round(value, 4), "unit": unit, **extra}),
          flush=True)


def write_video(path: Path, minutes: float, fps: int, width: int, height: int) -> int:
    """A moving-ball pitch video, encoded with x264 ultrafast; returns its frame count."""
    frames = int(minutes * 60 * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    pitch = np.zeros((height, width, 3), np.uint8)
    pitch[..., 1] = 90 + (((xx // 64) % 2) * 30).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps * 2)}
        for t in range(frames):
            image = pitch.copy()
            cx, cy = int((t * 7) % width), int(height / 2 + height / 3 * np.sin(t / 40))
            image[max(0, cy - 8):cy + 8, max(0, cx - 8):cx + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def write_store(path: Path, video: str, num_frames: int) -> None:
    from uglspot.entities.store import EntityStore, StoreKey

    rng = np.random.default_rng(0)
    detections = []
    for _ in range(num_frames):
        n = int(rng.integers(1, 8))
        xy = rng.uniform(0, 0.8, (n, 2)).astype(np.float32)
        detections.append({"boxes": np.concatenate([xy, xy + 0.1], 1), "cls": rng.integers(0, 5, n),
                           "score": rng.uniform(0.3, 1.0, n).astype(np.float32)})
    key = StoreKey(video=video, detector="benchmark", model="random", prompt=VOCABULARY, box_threshold=0.3,
                   text_threshold=0.25, max_per_frame=50, fps=None, size=None)
    EntityStore.write(path, key, num_frames, detections)


def spot_stages(args: argparse.Namespace, video_path: Path, work: Path, device: torch.device) -> None:
    from uglspot.video import VideoReader
    from uglspot.engine.infer import VideoScores, score_video, spot_events
    from uglspot.engine.runtime import amp_mode
    from uglspot.model.spotter import create_model

    amp_dtype, _ = amp_mode("auto", device)
    start = time.perf_counter()
    reader = VideoReader(video_path, fps=args.spot_fps, size=(args.spot_width, args.spot_height))
    num_frames = int(reader.num_frames)
    frames = torch.cat([reader.read(s, min(512, num_frames - s)) for s in range(0, num_frames, 512)])
    decode = time.perf_counter() - start
    emit("spot.decode", decode, "s", frames=num_frames, fps=args.spot_fps,
         size=[args.spot_width, args.spot_height], video_minutes=args.minutes)

    store = entity_store_path(work / "entities", "match")
    write_store(store, "match", num_frames)
    start = time.perf_counter()
    if args.detector:
        from uglspot.entities.detector_settings import DetectorConfig
        from uglspot.entities.pipeline import detect_to_stores

        config = DetectorConfig(name=args.detector, model=args.detector_model,
                                image_size=tuple(args.detector_size) if args.detector_size else None)
        outcome = detect_to_stores(config, [(video_path, "match")], work / "detected", args.spot_fps, str(device),
                                   args.detector_batch)
        if outcome.failures:
            raise SystemExit(f"detection failed: {outcome.failures}")
        seconds = time.perf_counter() - start
        emit("spot.detect", seconds, "s", detector=args.detector, model=config.model_id,
             frames_per_s=round(num_frames / seconds, 1), image_size=args.detector_size, device=str(device),
             note="decode at the detector's size + detection + store write")
        start = time.perf_counter()
    windows = EntityWindows(work / "entities", 50)
    for s in range(0, num_frames, 512):
        windows.window("match", s, min(512, num_frames - s))
    emit("spot.entities_read", time.perf_counter() - start, "s",
         note="entity store read; detection itself only with --detector")

    classes = [f"class{i}" for i in range(17)]
    model = create_model(args.model, len(classes), clip_len=args.clip_len, num_entity_classes=5).to(device)
    start = time.perf_counter()
    scores = score_video(model, num_frames, lambda s, c: _slice(frames, s, c),
                         lambda s, c: windows.window("match", s, c), args.clip_len, 5, args.infer_batch,
                         None, amp_dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    emit("spot.model", seconds, "s", frames_per_s=round(num_frames / seconds, 1), model=args.model,
         device=str(device))

    start = time.perf_counter()
    events = spot_events(VideoScores(scores.probs, scores.attention), classes, 0.01, 2,
                         lambda s, c: windows.window("match", s, c), list(VOCABULARY), 3)
    emit("spot.post", time.perf_counter() - start, "s", events=len(events))


def _slice(frames: torch.Tensor, start: int, count: int) -> torch.Tensor:
    out = torch.zeros((count, *frames.shape[1:]), dtype=frames.dtype)
    lo, hi = max(0, start), min(len(frames), start + count)
    if hi > lo:
        out[lo - start:hi - start] = frames[lo:hi]
    return out


def training_rates(args: argparse.Namespace, video_path: Path, num_frames: int, work: Path,
                   device: torch.device) -> None:
    from torch.utils.data import DataLoader

    from uglspot.engine.train import train

    labels = work / "labels"
    write_text_atomic(labels / "class.txt", "goal\ncard\n")
    rng = np.random.default_rng(1)
    events = [Event(int(f), "goal" if i % 2 else "card") for i, f in
              enumerate(sorted(rng.choice(num_frames, size=min(40, num_frames // 10), replace=False)))]
    video = Video("match", num_frames, float(args.fps), events, args.width, args.height)
    write_e2e_labels([video], labels / "train.json")
    (work / "videos").mkdir(exist_ok=True)
    (work / "videos" / "match.mp4").symlink_to(video_path)
    write_store(entity_store_path(work / "train_entities", "match"), "match", num_frames)  # native rate
    clip_frames = args.train_batch * args.clip_len
    config = RunConfig(
        dataset="demo", out=str(work / "run"),
        data=DataConfig(labels=str(labels), videos=str(work / "videos"), entities=str(work / "train_entities"),
                        val_split=None, fps=None, height=args.train_height, clip_len=args.clip_len,
                        workers=args.workers),
        model=ModelConfig(name=args.model, options={"num_entity_classes": 5}),
        augment=AugmentConfig(crop=[args.train_height, args.train_height]),
        optim=OptimConfig(warmup_epochs=0),
        train=TrainConfig(epochs=1, batch_size=args.train_batch, epoch_frames=clip_frames * args.train_steps,
                          amp="auto", device=str(device), tensorboard=False, log_every=1000),
        infer=InferConfig())
    train(config)
    with open(work / "run" / "metrics.csv") as handle:
        row = dict(zip(handle.readline().strip().split(","), handle.readline().strip().split(",")))
    train_fps = float(row["train_frames_per_s"])
    emit("train.frames_per_s", train_fps, "frames/s", model=args.model, batch=args.train_batch,
         clip_len=args.clip_len, crop=args.train_height, steps=args.train_steps, device=str(device),
         note="includes the first steps' warm-up")

    fps = {"match": None}
    clips = epoch_clips([video], args.clip_len, args.train_batch * args.loader_batches, 0, 0)
    dataset = ClipDataset(clips, [video], ["goal", "card"], VideoFrames(work / "videos", fps, args.train_height),
                          EntityWindows(work / "train_entities", 50))
    loader = DataLoader(dataset, batch_size=args.train_batch, num_workers=args.workers)
    start = time.perf_counter()
    count = sum(batch["frames"].shape[0] * batch["frames"].shape[1] for batch in loader)
    loader_fps = count / (time.perf_counter() - start)
    emit("train.loader_frames_per_s", loader_fps, "frames/s", workers=args.workers)
    emit("train.loader_headroom", loader_fps / train_fps, "x", target=">= 2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the generated video (default 10)")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--spot-fps", type=float, default=25 / 12, help="model frame rate (SoccerNet: 25/12)")
    parser.add_argument("--spot-width", type=int, default=398)
    parser.add_argument("--spot-height", type=int, default=224)
    parser.add_argument("--model", default="ugl_rny008")
    parser.add_argument("--clip-len", type=int, default=100)
    parser.add_argument("--infer-batch", type=int, default=4)
    parser.add_argument("--detector", default=None, choices=("grounding-dino", "owlv2"),
                        help="time this detector too, on the video at --spot-fps")
    parser.add_argument("--detector-model", default=None, help="its hub id or local directory (default: the backend's)")
    parser.add_argument("--detector-size", type=int, nargs=2, default=None, metavar=("SHORT", "LONG"),
                        help="grounding-dino input size (e.g. 448 800)")
    parser.add_argument("--detector-batch", type=int, default=8)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-height", type=int, default=224)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--loader-batches", type=int, default=6)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-train", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="uglspot-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        video_path = work / "match.mp4"
        num_frames = write_video(video_path, args.minutes, args.fps, args.width, args.height)
        emit("generate_video", time.perf_counter() - start, "s", frames=num_frames,
             size=[args.width, args.height], fps=args.fps)
        spot_stages(args, video_path, work, device)
        if not args.skip_train:
            training_rates(args, video_path, num_frames, work, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
