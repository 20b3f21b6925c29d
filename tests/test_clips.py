"""``uglspot clips``: clips cut around spotted events, copied where the
keyframes allow, encoded elsewhere, and a reel of them all.

The test video shows its own frame number as a bar code (8 wide black or
white bars, one per bit), which survives H.264: decoding a clip tells which
source frames it holds, so each clip's span is checked frame by frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from uglspot.app.clips import _scan, clip_spans, cut_highlights
from uglspot.cli import main
from uglspot.errors import UserError
from uglspot.synth.writers import VideoWriter
from uglspot.video import read_frames

FPS, FRAMES, W, H = 8.0, 160, 64, 32  # 20 s; the writer puts a keyframe every 16 frames (2 s)


def bar_code(i: int) -> np.ndarray:
    bits = [(i >> b) & 1 for b in range(8)]
    image = np.repeat(np.repeat(np.array(bits, dtype=np.uint8)[None, :] * 255, H, 0), W // 8, 1)
    return np.repeat(image[:, :, None], 3, 2)


def frame_numbers(path: Path) -> list[int]:
    frames = read_frames(path).numpy()  # (T, 3, H, W)
    bars = frames[:, 0, H // 2, W // 16::W // 8] > 127  # the middle of each bar
    return [int(sum(int(b) << k for k, b in enumerate(row))) for row in bars]


@pytest.fixture(scope="module")
def match(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clips")
    video = root / "match one.mp4"
    writer = VideoWriter(video, W, H, FPS)
    for i in range(FRAMES):
        writer.write(bar_code(i))
    writer.close()
    events = [{"frame": 32, "time": 4.0, "label": "Goal", "score": 0.9},
              {"frame": 100, "time": 12.5, "label": "Yellow card", "score": 0.7},
              {"frame": 110, "time": 13.75, "label": "Goal", "score": 0.4}]
    spotted = root / "spotted" / "match_one"
    spotted.mkdir(parents=True)
    (spotted / "events.json").write_text(json.dumps({"video": "match one", "fps": FPS, "num_frames": FRAMES,
                                                     "events": events}))
    (root / "spotted" / "index.json").write_text(json.dumps(
        {"match one": {"folder": "match_one", "events": "match_one/events.json"}}))
    return video, root / "spotted"


def test_clip_spans_join_overlaps_and_stay_inside_the_video() -> None:
    assert clip_spans([1.0, 4.0, 12.5, 13.75], 2.0, 2.0, 15.0) == [
        (0.0, 6.0, [0, 1]), (10.5, 15.0, [2, 3])]
    assert clip_spans([], 2.0, 2.0, 15.0) == []


def test_clips_are_copied_on_keyframes_encoded_elsewhere_and_joined(match, tmp_path) -> None:
    video, spotted = match
    keyframes = _scan(video).keyframes
    assert {2.0, 6.0} <= set(keyframes) and not {10.5, 15.75} & set(keyframes)
    outcome = cut_highlights(spotted, video, tmp_path / "out", before=2, after=2, reel=True)
    assert [(c.start, c.end, c.mode, [e.frame for e in c.events]) for c in outcome.clips] == [
        (2.0, 6.0, "copy", [32]), (10.5, 15.75, "encode", [100, 110])]
    # Frame by frame: the copied clip holds source frames 16-47, the encoded one 84-125.
    assert frame_numbers(outcome.clips[0].file) == list(range(16, 48))
    assert frame_numbers(outcome.clips[1].file) == list(range(84, 126))
    assert frame_numbers(outcome.reel) == list(range(16, 48)) + list(range(84, 126))
    assert outcome.clips[1].file.name == "clip_002_Yellow_card_00-12.5.mp4"  # named after its best event
    index = json.loads(outcome.index_file.read_text())
    assert [c["mode"] for c in index["clips"]] == ["copy", "encode"] and index["reel"] == "reel.mp4"


def test_copy_mode_widens_to_keyframes_and_classes_filter(match, tmp_path) -> None:
    video, spotted = match
    outcome = cut_highlights(spotted / "match_one" / "events.json", video, tmp_path / "out", classes=["Goal"],
                             before=2, after=2, mode="copy")
    keyframes = _scan(video).keyframes  # every 2 s, and where x264 saw a scene cut
    start, end = max(k for k in keyframes if k <= 11.75), min(k for k in keyframes if k >= 15.75)
    assert [(c.start, c.end, c.mode) for c in outcome.clips] == [(2.0, 6.0, "copy"), (start, end, "copy")]
    assert frame_numbers(outcome.clips[1].file) == list(range(round(start * FPS), round(end * FPS)))
    assert outcome.left_out == 1  # the yellow card
    encoded = cut_highlights(spotted, video, tmp_path / "enc", before=2, after=2, mode="encode", min_score=0.8)
    assert [(c.start, c.end, c.mode) for c in encoded.clips] == [(2.0, 6.0, "encode")]
    assert frame_numbers(encoded.clips[0].file) == list(range(16, 48))


def test_bad_inputs_get_one_line_and_nothing_is_overwritten(match, tmp_path, capsys) -> None:
    video, spotted = match
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    cases = [
        (["clips", str(spotted), "--video", str(video), "--out", str(taken)], "already exists and is not empty"),
        (["clips", str(spotted), "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "a")],
         "video not found"),
        (["clips", str(spotted), "--video", str(video), "--out", str(tmp_path / "b"), "--classes", "Corner"],
         "no event of class 'Corner'"),
        (["clips", str(spotted / "index.json"), "--video", str(video), "--out", str(tmp_path / "c")],
         "index.json"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert (taken / "mine.txt").read_text() == "keep" and sorted(p.name for p in taken.iterdir()) == ["mine.txt"]
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"video": "match one", "fps": FPS, "num_frames": 400,
                                 "events": [{"frame": 300, "label": "Goal", "score": 0.5}]}))
    with pytest.raises(UserError, match="past the end"):
        cut_highlights(short, video, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_the_command_prints_each_clip(match, tmp_path, capsys) -> None:
    video, spotted = match
    assert main(["clips", str(spotted), "--video", str(video), "--out", str(tmp_path / "hl"),
                 "--before", "2", "--after", "2", "--reel"]) == 0
    printed = capsys.readouterr().out
    assert "2 clip(s) (1 copied, 1 encoded)" in printed and "reel:" in printed
    assert "clip_001_Goal_00-04.0.mp4  2.0-6.0 s  Goal  (copy)" in printed
