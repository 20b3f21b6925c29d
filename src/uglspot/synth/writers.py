"""Writing a synthetic dataset: H.264 videos, E2E-Spot and SoccerNet labels,
and entity stores keyed like a real detector's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

from uglspot.config import from_dict, to_dict
from uglspot.data.labels import Video, write_e2e_labels
from uglspot.data.soccernet import e2e_to_soccernet, write_labels
from uglspot.entities.store import EntityStore, StoreKey, store_path
from uglspot.io import atomic_path, safe_name, write_json_atomic, write_text_atomic
from uglspot.synth.config import (CLASSES, DETECTOR_MODEL, DETECTOR_NAME, ENTITY_VOCABULARY, FEATURE_KIND, SPLITS,
                                  SynthConfig)
from uglspot.synth.detector import class_directions, simulate_detections
from uglspot.synth.render import render_frame
from uglspot.synth.simulator import random_streams, simulate_match


class VideoWriter:
    """H.264 (libx264) through PyAV; MPEG-4 part 2 when libx264 is missing."""

    def __init__(self, path: Path, width: int, height: int, fps: float, crf: int = 20):
        import av

        self.container = av.open(str(path), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        if "libx264" in av.codecs_available:
            self.stream = self.container.add_stream("libx264", rate=rate)
            # One encoder thread: the output is then the same bytes whatever the machine's load
            # (matches are encoded in parallel processes instead). No macroblock-tree rate control:
            # at sizes that are not a multiple of 16 (128x72, 64x36) it reads memory it never wrote,
            # and the same frames then encoded to other bytes in about one run in four.
            self.stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(max(int(fps * 2), 1)),
                                   "x264-params": "mbtree=0"}
            self.stream.codec_context.thread_count = 1
        else:
            self.stream = self.container.add_stream("mpeg4", rate=rate)
            self.stream.bit_rate = int(width * height * fps * 0.6)
        self.stream.width = width
        self.stream.height = height
        self.stream.pix_fmt = "yuv420p"
        self._frame_type = av.VideoFrame

    def write(self, image: np.ndarray) -> None:
        frame = self._frame_type.from_ndarray(image, format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def entity_store_key(video_id: str, cfg: SynthConfig, video_path: Path) -> StoreKey:
    """The key a synthetic match's store is written and opened with."""
    stat = video_path.stat()
    return StoreKey(video=video_id, detector=DETECTOR_NAME, model=DETECTOR_MODEL, prompt=tuple(ENTITY_VOCABULARY),
                    box_threshold=cfg.detector.min_score, text_threshold=cfg.detector.min_score,
                    max_per_frame=cfg.detector.max_entities, fps=cfg.fps,
                    size=(min(cfg.width, cfg.height), max(cfg.width, cfg.height)),
                    source_bytes=stat.st_size, source_mtime=stat.st_mtime,
                    features=FEATURE_KIND if cfg.detector.feat_dim > 0 else None)


def write_soccernet_labels(root: Path, video: Video) -> Path:
    """``root/<match>/Labels-v2.json``: a synthetic match is the first half of its game."""
    (game,) = e2e_to_soccernet([replace(video, video=f"{safe_name(video.video)}/1")], "synthetic labels")
    return write_labels(root, game)


@dataclass
class MatchPaths:
    video: Path
    entities: Path
    soccernet: Path  # the root of the SoccerNet layout; the match is the game <id>


def match_paths(root: Path, video_id: str) -> MatchPaths:
    """Where a match's files go: the video as ``data.videos`` expects it and
    the entity store where the training engine looks for it."""
    name = safe_name(video_id)
    return MatchPaths(video=root / "videos" / f"{name}.mp4", entities=store_path(root / "entities", video_id),
                      soccernet=root / "soccernet")


def write_match(root: Path, video_id: str, cfg: SynthConfig, seed: int, index: int,
                progress: Callable[[int], None] | None = None) -> Video:
    """Render one match into ``root`` (video, entity store, SoccerNet labels)
    and return its E2E-Spot record."""
    script = simulate_match(cfg, seed, index)
    _, detector_rng = random_streams(seed, index)
    directions = class_directions(cfg.detector.feat_dim) if cfg.detector.feat_dim > 0 else None
    paths = match_paths(root, video_id)
    paths.video.parent.mkdir(parents=True, exist_ok=True)
    detections = []
    with atomic_path(paths.video) as tmp:
        writer = VideoWriter(tmp, cfg.width, cfg.height, cfg.fps, cfg.crf)
        try:
            for i in range(script.num_frames):
                rendered = render_frame(script, i, cfg.width, cfg.height)
                writer.write(rendered.image)
                detections.append(simulate_detections(rendered, cfg.detector, detector_rng, directions))
                if progress is not None:
                    progress(1)
        finally:
            writer.close()
    EntityStore.write(paths.entities, entity_store_key(video_id, cfg, paths.video), script.num_frames, detections)
    video = Video(video=video_id, num_frames=script.num_frames, fps=cfg.fps, events=script.events,
                  width=cfg.width, height=cfg.height)
    write_soccernet_labels(paths.soccernet, video)
    return video


def split_counts(matches: int) -> dict[str, int]:
    """Train/val/test match counts for ``matches`` in all: a fifth for test
    and a tenth for validation, at least one each."""
    if matches < 3:
        raise ValueError(f"need at least 3 matches (one per split), got {matches}")
    test = max(1, matches // 5)
    val = max(1, matches // 10)
    return {"train": matches - test - val, "val": val, "test": test}


def _render_job(job: tuple[str, str, dict[str, Any], int, int]) -> Video:
    root, video_id, cfg_dict, seed, index = job
    return write_match(Path(root), video_id, from_dict(SynthConfig, cfg_dict, "synthetic config"), seed, index)


def generate_dataset(root: Path, cfg: SynthConfig, counts: dict[str, int], seed: int, workers: int = 1,
                     show_progress: bool = True, minutes: dict[str, float] | None = None) -> dict[str, list[Video]]:
    """Render every match of every split into ``root``; write class.txt,
    ``{split}.json`` and ``dataset.json`` (the resolved config and seed).
    ``minutes`` sets a split's match length (default ``cfg.minutes``).

    Match ``i`` (counted over train, val, test in that order) is seeded by
    ``(seed, i)``, so a split renders the same whatever the worker count."""
    from concurrent.futures import ProcessPoolExecutor

    from uglspot.progress import progress_bar

    root.mkdir(parents=True, exist_ok=True)
    split_cfg = {split: replace(cfg, minutes=(minutes or {}).get(split, cfg.minutes)) for split in SPLITS}
    jobs: list[tuple[str, str, dict[str, Any], int, int]] = []
    for split in SPLITS:
        for k in range(counts.get(split, 0)):
            jobs.append((str(root), f"{split}_{k:03d}", to_dict(split_cfg[split]), seed, len(jobs)))
    total = sum(split_cfg[split].num_frames * counts.get(split, 0) for split in SPLITS)
    bar = progress_bar("synth: render matches", total, "frame", disable=not show_progress)
    videos: list[Video] = []
    with bar:
        if workers <= 1:
            for root_s, video_id, _, match_seed, index in jobs:
                videos.append(write_match(Path(root_s), video_id, split_cfg[video_id.split("_")[0]], match_seed,
                                          index, progress=bar.update))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for video in pool.map(_render_job, jobs):
                    videos.append(video)
                    bar.update(video.num_frames)
    by_split: dict[str, list[Video]] = {split: [] for split in SPLITS}
    for video in videos:
        by_split[video.video.split("_")[0]].append(video)
    write_text_atomic(root / "class.txt", "\n".join(CLASSES) + "\n")
    for split, split_videos in by_split.items():
        write_e2e_labels(split_videos, root / f"{split}.json")
    write_json_atomic(root / "dataset.json", {
        "generator": "uglspot synth", "seed": seed, "counts": counts, "config": to_dict(cfg),
        "minutes": {split: split_cfg[split].minutes for split in SPLITS}, "entity_vocabulary": ENTITY_VOCABULARY})
    return by_split
