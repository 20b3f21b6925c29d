from __future__ import annotations

import math
from pathlib import Path

import av
import pytest
import torch

from _video_helpers import decode_index, write_audio_only, write_index_video
from uglspot.video import DecodeError, VideoReader, output_size, probe, read_frames
from uglspot.errors import UserError


def expected_sources(source_ms: list[float], duration_ms: float, fps: float) -> list[int]:
    """The mapping rule written independently: target i shows the last source
    frame whose time is at or before i / fps; ceil(duration * fps) targets."""
    count = math.ceil(duration_ms / 1000 * fps - 1e-9)
    out = []
    for i in range(count):
        t = i * 1000 / fps
        out.append(max(k for k, s in enumerate(source_ms) if s <= t + 1e-6))
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    vfr_ms = [0, 40, 60, 140, 150, 300, 310, 320, 500, 900]
    return {
        "25": write_index_video(d / "25fps.mp4", 100, fps=25),
        "30": write_index_video(d / "30fps.mp4", 60, fps=30),
        "vfr": write_index_video(d / "vfr.mp4", len(vfr_ms), pts_ms=vfr_ms),
        "vfr_ms": vfr_ms,
    }


@pytest.mark.parametrize("name,fps,source_fps,n_source", [
    ("25", 2, 25, 100),
    ("25", 25, 25, 100),
    ("25", 12.5, 25, 100),
    ("30", 25, 30, 60),
    ("30", 2, 30, 60),
])
def test_constant_rate_mapping_follows_the_rule(videos, name, fps, source_fps, n_source) -> None:
    source_ms = [k * 1000 / source_fps for k in range(n_source)]
    want = expected_sources(source_ms, n_source * 1000 / source_fps, fps)
    frames = read_frames(videos[name], fps=fps)
    assert [decode_index(f) for f in frames] == want


def test_hand_computed_examples(videos) -> None:
    assert [decode_index(f) for f in read_frames(videos["25"], fps=2)][:5] == [0, 12, 25, 37, 50]
    assert [decode_index(f) for f in read_frames(videos["30"], fps=25)][:8] == [0, 1, 2, 3, 4, 6, 7, 8]


@pytest.mark.parametrize("fps", [25, 10, 2])
def test_variable_frame_rate_mapping(videos, fps) -> None:
    info = probe(videos["vfr"])
    want = expected_sources(videos["vfr_ms"], info.duration * 1000, fps)
    frames = read_frames(videos["vfr"], fps=fps)
    assert [decode_index(f) for f in frames] == want


def test_native_rate_gives_every_frame_even_when_variable(videos) -> None:
    frames = read_frames(videos["vfr"])
    assert [decode_index(f) for f in frames] == list(range(len(videos["vfr_ms"])))


@pytest.mark.parametrize("start,count", [(0, 10), (37, 20), (90, 15), (-3, 6), (120, 4), (99, 1)])
def test_random_access_matches_a_full_decode(videos, start, count) -> None:
    reader = VideoReader(videos["30"], fps=25)
    full = [decode_index(f) for f in read_frames(videos["30"], fps=25)]
    clip = reader.read(start, count)
    assert clip.shape == (count, 3, 48, 64) and clip.dtype == torch.uint8
    for offset in range(count):
        i = start + offset
        if 0 <= i < reader.num_frames:
            assert decode_index(clip[offset]) == full[i], i
        else:
            assert not clip[offset].any(), f"frame {i} outside the video must be zeros"


def test_probe_metadata(videos) -> None:
    info = probe(videos["25"])
    assert (info.fps, info.num_frames, info.width, info.height, info.rotation) == (25, 100, 64, 48, 0)
    assert info.duration == pytest.approx(4.0)
    assert info.codec == "h264" and info.file_bytes == videos["25"].stat().st_size


@pytest.mark.parametrize("size,want", [(None, (64, 48)), (24, (32, 24)), ((40, 20), (40, 20)), (30, (40, 30))])
def test_output_size(videos, size, want) -> None:
    reader = VideoReader(videos["25"], fps=2, size=size)
    assert (reader.width, reader.height) == want
    frames = reader.read(1, 2)
    assert frames.shape == (2, 3, want[1], want[0])
    assert [decode_index(f) for f in frames] == [12, 25]


@pytest.mark.parametrize("width,height,size,want", [
    (1920, 1080, 224, (398, 224)), (1280, 720, 224, (398, 224)), (640, 480, 224, (298, 224)),
    (1920, 1080, (800, 448), (800, 448)), (100, 50, None, (100, 50)),
])
def test_output_size_table(width, height, size, want) -> None:
    assert output_size(width, height, size) == want


@pytest.mark.parametrize("fps, size, words", [
    (1e12, None, "above 1000"), (float("nan"), None, "positive number"), (float("inf"), None, "positive number"),
    (2, 100000, "larger than 8192"), (2, (9000, 100), "larger than 8192"),
])
def test_out_of_range_decoding_is_refused_before_any_work(videos, fps, size, words) -> None:
    """`frames --fps 1e12` once ran on filling the disk; `--height 100000` ended in an internal error."""
    with pytest.raises(UserError, match=words):
        VideoReader(videos["25"], fps=fps, size=size)


def test_rotated_video_is_returned_upright(tmp_path) -> None:
    path = write_index_video(tmp_path / "rot.mp4", 5, width=64, height=32, rotation=90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 32, 64)
    frames = read_frames(path)
    assert frames.shape == (5, 3, 64, 32)
    # undo the counter-clockwise display rotation and read the index back
    assert [decode_index(torch.rot90(f, k=-1, dims=(1, 2))) for f in frames] == list(range(5))


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_truncated_file_names_last_good_frame_and_keeps_earlier_frames(tmp_path, codec) -> None:
    path = write_index_video(tmp_path / "v.mp4", 100, codec=codec, options={"movflags": "faststart"})
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(DecodeError) as caught:
        read_frames(cut, fps=25)
    exc = caught.value
    assert str(cut) in str(exc) and f"last good target frame {exc.last_good_frame}" in str(exc)
    assert 10 < exc.last_good_frame < 90
    assert exc.frames.shape[0] == exc.last_good_frame + 1
    assert [decode_index(f) for f in exc.frames] == list(range(exc.last_good_frame + 1))


def test_garbled_file_is_a_decode_error_with_usable_frames(tmp_path) -> None:
    path = write_index_video(tmp_path / "v.mp4", 100, options={"movflags": "faststart"})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + len(data) // 5] = bytes((i * 7919) % 251 for i in range(len(data) // 5))
    bad = tmp_path / "garbled.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(DecodeError) as caught:
        read_frames(bad, fps=25)
    exc = caught.value
    assert "damaged" in str(exc) and str(bad) in str(exc)
    assert [decode_index(f) for f in exc.frames] == list(range(exc.last_good_frame + 1))


def _empty_video(path: Path) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def _unknown_codec(path: Path, source: Path) -> Path:
    path.write_bytes(source.read_bytes().replace(b"avc1", b"zzzz"))
    return path


@pytest.mark.parametrize("make,message", [
    (lambda d, v: d / "missing.mp4", "no such file"),
    (lambda d, v: write_audio_only(d / "audio.m4a"), "no video stream"),
    (lambda d, v: _empty_video(d / "empty.mp4"), "zero-frame"),
    (lambda d, v: _empty_video(d / "empty.mkv"), "zero-frame"),
    (lambda d, v: (d / "junk.mp4").write_bytes(b"not a video" * 50) and d / "junk.mp4", "not a readable video"),
    (lambda d, v: _unknown_codec(d / "unknown.mp4", v["25"]), "not supported"),
    (lambda d, v: d, "is a directory"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, videos, make, message) -> None:
    path = make(tmp_path, videos)
    with pytest.raises(UserError) as caught:
        probe(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text
