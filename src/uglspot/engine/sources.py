"""What a run reads: the label splits of its config, the frame source
(frame cache or video files) checked against them, and the frame count
each video's entity store should have."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from uglspot.data.dataset import CachedFrames, FrameSource, VideoFrames
from uglspot.data.labels import Video, read_class_list, read_e2e_labels
from uglspot.engine.config import RunConfig
from uglspot.errors import UserError

# How train and predict keep label events past a video's end (``data.allow_events_past_end``).
PAST_END_OPTION = "--set data.allow_events_past_end=true"


@dataclass
class Splits:
    classes: list[str]
    train: list[Video]
    val: list[Video] = field(default_factory=list)


def load_splits(config: RunConfig, need_train: bool = True) -> Splits:
    labels = Path(config.data.labels)
    if not labels.is_dir():
        raise UserError(f"data.labels={labels}: not a directory; point it at the folder with class.txt and "
                        "{split}.json")
    classes = read_class_list(labels / "class.txt")

    def read(split: str) -> list[Video]:
        path = labels / f"{split}.json"
        if not path.is_file():
            raise UserError(f"{path}: split {split!r} not found; check data.train_splits / data.val_split")
        return read_e2e_labels(path, classes, allow_past_end=config.data.allow_events_past_end,
                           past_end_option=PAST_END_OPTION)

    train = [v for split in config.data.train_splits for v in read(split)] if need_train else []
    val = read(config.data.val_split) if config.data.val_split else []
    return Splits(classes=classes, train=train, val=val)


def split_videos(config: RunConfig, split: str, classes: Sequence[str]) -> list[Video]:
    path = Path(config.data.labels) / f"{split}.json"
    if not path.is_file():
        raise UserError(f"{path}: split {split!r} not found in data.labels")
    return read_e2e_labels(path, classes, allow_past_end=config.data.allow_events_past_end,
                           past_end_option=PAST_END_OPTION)


def check_frame_cache(cache: Any, config: RunConfig, videos: Sequence[Video]) -> None:
    """Raise the first of :func:`frame_cache_problems`."""
    problems = frame_cache_problems(cache, config, videos)
    if problems:
        raise UserError(problems[0])


def frame_cache_problems(cache: Any, config: RunConfig, videos: Sequence[Video]) -> list[str]:
    """Every video is in the cache, with frames of the configured height
    (and width) at the rate training decodes at, and the labels' frame count;
    one line per video that is not, saying how it differs and how to fix it.
    Reads only each entry's ``meta.json`` (or its first frame)."""
    from uglspot.engine.store_checks import counts_disagree

    where = f"data.frame_cache={config.data.frame_cache}"
    problems = []
    for video in videos:
        try:
            height, width = cache.frame_size(video.video)  # an error naming the video if it is missing
            meta = cache.meta(video.video)
        except UserError as exc:
            problems.append(str(exc))
            continue
        fps = decode_rate(config, video)
        remedy = (f"rebuild it with `uglspot frames VIDEOS --out {config.data.frame_cache} "
                  f"{'--fps ' + format(fps, 'g') + ' ' if fps else ''}"
                  f"{'--size ' + str(config.data.width) + 'x' + str(config.data.height) if config.data.width else '--height ' + str(config.data.height)}`")
        if height != config.data.height or (config.data.width and width != config.data.width):
            problems.append(f"{where}: video {video.video!r} is cached at {width}x{height} but the config asks for "
                            f"height {config.data.height}{f', width {config.data.width}' if config.data.width else ''}; "
                            f"{remedy}, or set data.height={height}")
            continue
        cached_fps = meta.get("fps")
        if fps and cached_fps and abs(cached_fps - fps) > 1e-3 * fps:
            problems.append(f"{where}: video {video.video!r} is cached at {cached_fps:g} fps but its labels are at "
                            f"{fps:g} fps; {remedy}")
            continue
        count, expected = cache.num_frames(video.video), expected_frames(config, video)
        if expected is not None and counts_disagree(count, expected):
            problems.append(f"{where}: video {video.video!r} has {count} cached frames but its labels say "
                            f"{expected}; {remedy}")
    return problems


def frame_source(config: RunConfig, videos: Sequence[Video]) -> FrameSource:
    """Frames from the frame cache when configured, else decoded from the video files."""
    if config.data.frame_cache:
        frames = CachedFrames(config.data.frame_cache)
        check_frame_cache(frames.cache, config, videos)
        return frames
    if not config.data.videos:
        raise UserError("no frames: set data.videos (a folder of video files) or data.frame_cache")
    fps = {v.video: decode_rate(config, v) for v in videos}
    return VideoFrames(config.data.videos, fps, config.data.height, config.data.width)


def decode_rate(config: RunConfig, video: Video) -> float | None:
    """The rate a video's frames are decoded at: ``data.fps``, else the
    labels' rate, else (labels say -1) None, the file's own rate."""
    return config.data.fps or (video.fps if video.fps > 0 else None)


def expected_frames(config: RunConfig, video: Video) -> int | None:
    """The frame count a video's entity store should have: the labels' when
    frames are decoded at the labels' rate, else unknown."""
    if config.data.fps is None or video.fps <= 0 or abs(config.data.fps - video.fps) < 1e-6:
        return video.num_frames
    return None
