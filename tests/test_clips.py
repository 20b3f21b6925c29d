from __future__ import annotations

import numpy as np
import pytest

from uglspot.data.clips import (
    Clip, dense_labels, epoch_clips, inference_windows, sample_clips, start_range, video_events,
)
from uglspot.data.labels import Event, Video
from uglspot.engine.runtime import shard
from uglspot.errors import UserError


@pytest.mark.parametrize("num_frames, length, pad, expected", [
    (100, 100, 5, (-5, 5)),
    (200, 100, 5, (-5, 105)),
    (100, 50, 0, (0, 50)),
    (10, 100, 5, (-5, -5)),  # shorter than a clip: still starts before the video
    (0, 4, 5, (-5, 1)),
])
def test_start_range(num_frames: int, length: int, pad: int, expected: tuple[int, int]) -> None:
    assert start_range(num_frames, length, pad) == expected


@pytest.mark.parametrize("num_frames, length, pad, stride, expected", [
    (10, 4, 1, None, [-1, 1, 3, 5, 7]),
    (100, 100, 5, None, [-5, 45]),
    (96, 100, 5, None, [-5, 45]),
    (95, 100, 5, None, [-5]),  # -5 .. 94 covers every frame
    (3, 100, 5, None, [-5]),
    (0, 100, 5, None, [-5]),
    (10, 4, 0, 4, [0, 4, 8]),
    (10, 5, 0, 1, [0, 1, 2, 3, 4, 5]),
])
def test_inference_windows(num_frames: int, length: int, pad: int, stride: int | None,
                           expected: list[int]) -> None:
    starts = inference_windows(num_frames, length, pad, stride)
    assert starts == expected
    covered = set()
    for start in starts:
        covered.update(range(start, start + length))
    assert set(range(num_frames)) <= covered


@pytest.mark.parametrize("events, start, length, num_frames, dilate, expected", [
    ([(2, 1), (7, 3)], 0, 10, 10, 0, [0, 0, 1, 0, 0, 0, 0, 3, 0, 0]),
    ([(2, 1), (7, 3)], -2, 10, 10, 0, [0, 0, 0, 0, 1, 0, 0, 0, 0, 3]),
    ([(2, 1), (7, 3)], 5, 4, 10, 0, [0, 0, 3, 0]),
    ([(10, 2)], 5, 8, 10, 0, [0] * 8),  # past the end of the video: dropped
    ([(2, 1), (4, 2)], 0, 8, 10, 1, [0, 1, 1, 1, 2, 2, 0, 0]),  # tie at 3: earlier event wins
    ([(2, 1), (5, 2)], 0, 10, 10, 2, [1, 1, 1, 1, 2, 2, 2, 2, 0, 0]),  # nearer event wins
    ([(9, 1)], 0, 12, 10, 1, [0] * 8 + [1, 1, 0, 0]),  # dilation stays inside the video
    ([(0, 1)], -2, 5, 10, 1, [0, 0, 1, 1, 0]),
])
def test_dense_labels(events: list[tuple[int, int]], start: int, length: int, num_frames: int, dilate: int,
                      expected: list[int]) -> None:
    labels = dense_labels(events, start, length, num_frames, dilate)
    assert labels.dtype == np.int64
    assert labels.tolist() == expected


@pytest.mark.parametrize("items, rank, world, expected", [
    (list(range(10)), 0, 1, list(range(10))),
    (list(range(10)), 0, 3, [0, 3, 6]),
    (list(range(10)), 2, 3, [2, 5, 8]),
    (list(range(4)), 1, 2, [1, 3]),
    (list(range(1)), 1, 2, []),
])
def test_shard(items: list[int], rank: int, world: int, expected: list[int]) -> None:
    assert shard(items, rank, world, equal=True) == expected


def test_shard_rejects_a_bad_rank() -> None:
    with pytest.raises(UserError):
        shard([1, 2], 2, 2)


def test_sample_clips_is_deterministic_and_in_range() -> None:
    lengths, ids = [1000, 10, 0, 300], ["a", "b", "c", "d"]
    first = sample_clips(lengths, ids, 100, 500, np.random.default_rng(3))
    again = sample_clips(lengths, ids, 100, 500, np.random.default_rng(3))
    assert first == again
    assert all(isinstance(c, Clip) and c.length == 100 for c in first)
    for clip in first:
        low, high = start_range(lengths[clip.video_index], 100, 5)
        assert low <= clip.start <= high
        assert clip.video == ids[clip.video_index]
    assert not any(c.video == "c" for c in first)  # a video with no frames is never drawn
    assert {c.start for c in first if c.video == "b"} == {-5}


def test_sample_clips_draws_videos_in_proportion_to_length() -> None:
    clips = sample_clips([3000, 1000], ["long", "short"], 10, 8000, np.random.default_rng(0))
    share = sum(c.video == "long" for c in clips) / len(clips)
    assert share == pytest.approx(0.75, abs=0.02)
    starts = np.array([c.start for c in clips if c.video == "short"])
    assert starts.min() == -5 and starts.max() == 995  # both ends of [-5, N - 10 + 5] reachable
    assert abs(starts.mean() - 495) < 20  # uniform in the range


def test_epoch_clips_depend_only_on_seed_and_epoch() -> None:
    videos = [Video("x", 500, 25.0), Video("y", 200, 25.0)]
    assert epoch_clips(videos, 50, 20, seed=1, epoch=4) == epoch_clips(videos, 50, 20, seed=1, epoch=4)
    assert epoch_clips(videos, 50, 20, seed=1, epoch=4) != epoch_clips(videos, 50, 20, seed=1, epoch=5)
    assert epoch_clips(videos, 50, 20, seed=1, epoch=4) != epoch_clips(videos, 50, 20, seed=2, epoch=4)


def test_video_events_maps_labels_to_indices_from_one() -> None:
    video = Video("v", 10, 25.0, [Event(3, "goal"), Event(8, "card")])
    assert video_events(video, {"goal": 1, "card": 2}) == [(3, 1), (8, 2)]


def test_sample_clips_rejects_empty_input() -> None:
    with pytest.raises(ValueError):
        sample_clips([0, 0], ["a", "b"], 10, 5, np.random.default_rng(0))
