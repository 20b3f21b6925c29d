"""Which frames to read: training clips, inference windows and dense labels.

Pure functions over plain records (no decoding, no torch), so each rule can be
checked against a table of hand-computed cases:

- training clips: a video is drawn with probability proportional to its number
  of frames, and a clip of ``length`` frames starts uniformly in
  ``[-pad, N - length + pad]`` (frames outside the video are read as zeros);
- an epoch's clips are a pure function of ``(seed, epoch)``, so a resumed run
  redraws exactly the clips it had and skips the ones already consumed, and
  DDP ranks take interleaved shares of the same list;
- inference windows of ``length`` frames overlap by ``length // 2`` and start
  at ``-pad`` like training clips, until every frame is covered;
- dense labels: one class index per frame (0 = no event), optionally dilated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from uglspot.data.labels import Video


@dataclass(frozen=True)
class Clip:
    """``length`` frames of video ``video`` (index ``video_index``) from ``start`` (may be negative)."""
    video_index: int
    video: str
    start: int
    length: int


def start_range(num_frames: int, length: int, pad: int) -> tuple[int, int]:
    """Inclusive range of training clip starts for a video of ``num_frames``.

    ``[-pad, num_frames - length + pad]``; a video shorter than the clip keeps
    the clip starting at ``-pad`` at the latest so that it still covers frames.
    """
    low = -pad
    high = max(low, num_frames - length + pad)
    return low, high


def sample_clips(
    num_frames: Sequence[int], video_ids: Sequence[str], length: int, count: int,
    rng: np.random.Generator, pad: int = 5,
) -> list[Clip]:
    """``count`` training clips; videos drawn in proportion to their length."""
    lengths = np.asarray(num_frames, dtype=np.float64)
    if len(lengths) != len(video_ids):
        raise ValueError("num_frames and video_ids differ in length")
    if len(lengths) == 0 or lengths.sum() <= 0:
        raise ValueError("no frames to sample clips from")
    videos = rng.choice(len(lengths), size=count, p=lengths / lengths.sum())
    clips = []
    for index in videos:
        low, high = start_range(int(lengths[index]), length, pad)
        start = int(rng.integers(low, high + 1))
        clips.append(Clip(int(index), video_ids[index], start, length))
    return clips


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch's clips: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch])


def epoch_clips(
    videos: Sequence[Video], length: int, clips_per_epoch: int, seed: int, epoch: int, pad: int = 5,
) -> list[Clip]:
    """The clips of training epoch ``epoch`` (identical on every rank and after a resume)."""
    return sample_clips([v.num_frames for v in videos], [v.video for v in videos], length,
                        clips_per_epoch, epoch_rng(seed, epoch), pad)


def inference_windows(num_frames: int, length: int, pad: int = 5, stride: int | None = None) -> list[int]:
    """Starts of the windows that cover ``[0, num_frames)``.

    The first starts at ``-pad``; each next one ``stride`` (default
    ``length // 2``) later, until a window reaches the last frame.
    """
    stride = stride or max(1, length // 2)
    starts = [-pad]
    while starts[-1] + length < num_frames:
        starts.append(starts[-1] + stride)
    return starts


def dense_labels(
    events: Sequence[tuple[int, int]], start: int, length: int, num_frames: int, dilate: int = 0,
) -> np.ndarray:
    """Per-frame class index (0 = no event) of frames ``start .. start+length-1``.

    ``events`` are ``(frame, class_index)`` with class indices from 1. Events
    at or past ``num_frames`` are dropped. With ``dilate`` > 0 the frames up to
    ``dilate`` away from an event carry its class too; where dilated events
    meet, the nearer event wins (the earlier one on a tie).
    """
    labels = np.zeros(length, dtype=np.int64)
    distance = np.full(length, np.iinfo(np.int64).max)
    for frame, cls in events:
        if frame < 0 or frame >= num_frames:
            continue
        for offset in range(-dilate, dilate + 1):
            index = frame + offset - start
            if 0 <= index < length and 0 <= frame + offset < num_frames and abs(offset) < distance[index]:
                labels[index] = cls
                distance[index] = abs(offset)
    return labels


def video_events(video: Video, class_index: dict[str, int]) -> list[tuple[int, int]]:
    """``(frame, class_index)`` of a video's events, class indices from 1."""
    return [(e.frame, class_index[e.label]) for e in video.events]
