from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _video_helpers import decode_index, write_index_video
from uglspot.cli import main
from uglspot.data.frame_cache import CacheSettings, FrameCache, _encode_jpegs, build_cache, is_done
from uglspot.data.inputs import expand_video_inputs, video_ids
from uglspot.engine.runtime import shard
from uglspot.video import DecodeError, read_frames
from uglspot.errors import UserError


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_index_video(tmp_path_factory.mktemp("v") / "match.mp4", 60, fps=30)


@pytest.mark.parametrize("fmt", ["jpeg", "raw"])
def test_cache_gives_the_same_frames_as_the_decoder(tmp_path, video, fmt) -> None:
    settings = CacheSettings(fps=25, size=24, format=fmt)
    meta = build_cache(video, tmp_path, "match", settings)
    assert meta["complete"] and meta["num_frames"] == 50 and (meta["width"], meta["height"]) == (32, 24)
    cache = FrameCache(tmp_path)
    assert cache.num_frames("match") == 50 and cache.videos() == ["match"]
    decoded = read_frames(video, fps=25, size=24)
    for start, count in [(0, 50), (13, 7), (-4, 10), (45, 10), (60, 3)]:
        clip = cache.read("match", start, count)
        assert clip.shape == (count, 3, 24, 32) and clip.dtype == torch.uint8
        for k in range(count):
            i = start + k
            if 0 <= i < 50:
                assert decode_index(clip[k]) == decode_index(decoded[i])
                if fmt == "raw":
                    assert torch.equal(clip[k], decoded[i])
                else:
                    assert (clip[k].float() - decoded[i].float()).abs().mean() < 8
            else:
                assert not clip[k].any()


@pytest.mark.parametrize("fmt", ["jpeg", "raw"])
def test_a_flipped_bit_in_frames_bin_stops_the_read_naming_the_frame(tmp_path, video, fmt) -> None:
    """JPEG decoders only warn on corrupt data and decode another picture: a
    flipped bit once changed predict's output with exit 0."""
    build_cache(video, tmp_path, "match", CacheSettings(fps=25, size=24, format=fmt))
    frames_bin = tmp_path / "match" / "frames.bin"
    if fmt == "jpeg":
        offsets = np.load(tmp_path / "match" / "index.npy")
        where = int(offsets[17] + offsets[18]) // 2  # inside frame 17's JPEG
    else:
        where = 17 * 3 * 24 * 32 + 100
    data = bytearray(frames_bin.read_bytes())
    data[where] ^= 0x04
    frames_bin.write_bytes(bytes(data))
    cache = FrameCache(tmp_path)
    assert cache.read("match", 0, 17).shape[0] == 17  # the frames before it still read
    assert cache.read("match", 18, 10).shape[0] == 10  # and the ones after it
    for start, count in [(10, 8), (17, 1)]:
        with pytest.raises(UserError, match=r"frames\.bin: damaged frame cache \(frame 17 of match .*CRC-32"):
            cache.read("match", start, count)
    with pytest.raises(UserError, match="frame 17 of match"):
        cache.verify("match")
    data[where] ^= 0x04  # restored: the whole video checks
    frames_bin.write_bytes(bytes(data))
    FrameCache(tmp_path).verify("match")


def test_a_cache_without_crcs_is_read_as_it_is(tmp_path, video) -> None:
    build_cache(video, tmp_path, "match", CacheSettings(fps=25, size=24))
    meta_path = tmp_path / "match" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["crc32_sha256"]  # as written before the CRCs
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "match" / "crc32.npy").unlink()
    FrameCache(tmp_path).verify("match")


def test_a_clip_reads_only_its_own_bytes(tmp_path, video, monkeypatch) -> None:
    build_cache(video, tmp_path, "match", CacheSettings(fps=25, size=24))
    cache = FrameCache(tmp_path)
    offsets = np.load(tmp_path / "match" / "index.npy")
    seen = []
    import uglspot.data.frame_cache as module

    real = module._decode_jpegs
    monkeypatch.setattr(module, "_decode_jpegs", lambda blobs: seen.append(sum(b.numel() for b in blobs)) or real(blobs))
    cache.read("match", 10, 5)
    assert seen == [int(offsets[15] - offsets[10])]


def test_resume_skips_done_and_redoes_changed_settings(tmp_path, video, capsys) -> None:
    out = tmp_path / "cache"
    args = ["frames", str(video), "--fps", "25", "--height", "24", "--out", str(out)]
    assert main(args) == 0
    stamp = (out / "match" / "frames.bin").stat().st_mtime_ns
    assert main(args) == 0
    assert "already done" in capsys.readouterr().err
    assert (out / "match" / "frames.bin").stat().st_mtime_ns == stamp
    assert main(args[:-4] + ["--height", "16", "--out", str(out)]) == 0
    assert json.loads((out / "match" / "meta.json").read_text())["height"] == 16


def test_killed_run_does_not_look_done(tmp_path, video) -> None:
    settings = CacheSettings(fps=25, size=24)
    build_cache(video, tmp_path, "match", settings)
    assert is_done(tmp_path / "match", video, settings)
    (tmp_path / "match" / "meta.json").unlink()  # what a kill before the last write leaves
    assert not is_done(tmp_path / "match", video, settings)
    with pytest.raises(UserError, match="no cached frames"):
        FrameCache(tmp_path).read("match", 0, 1)


def test_damaged_video_keeps_frames_before_the_damage(tmp_path) -> None:
    good = write_index_video(tmp_path / "good.mp4", 100, options={"movflags": "faststart"})
    data = good.read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError) as caught:
        build_cache(bad, tmp_path / "cache", "bad", CacheSettings(fps=25, size=None))
    cache = FrameCache(tmp_path / "cache")
    assert cache.num_frames("bad") == caught.value.last_good_frame + 1
    assert cache.meta("bad")["complete"] is False
    frames = cache.read("bad", 0, cache.num_frames("bad"))
    assert [decode_index(f) for f in frames] == list(range(cache.num_frames("bad")))


def test_frames_command_goes_on_past_bad_videos_and_lists_them(tmp_path, video, capsys) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 100)
    out = tmp_path / "cache"
    code = main(["frames", str(junk), str(tmp_path / "missing.mp4"), str(video), "--fps", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "2 video(s) failed" in err and "junk.mp4: not a readable video" in err and "missing.mp4: no such file" in err
    assert FrameCache(out).num_frames("match") == 4


@pytest.mark.slow
def test_parallel_workers_give_the_same_cache(tmp_path, video) -> None:
    other = write_index_video(tmp_path / "other.mp4", 50, fps=25)
    out = tmp_path / "cache"
    assert main(["frames", str(video), str(other), "--fps", "5", "--out", str(out), "--workers", "2"]) == 0
    cache = FrameCache(out)
    assert [decode_index(f) for f in cache.read("other", 0, 10)] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert [decode_index(f) for f in cache.read("match", 0, 3)] == [0, 6, 12]


def test_reads_e2e_spot_frame_folders(tmp_path) -> None:
    from _video_helpers import index_image

    folder = tmp_path / "england_epl" / "game" / "1"
    folder.mkdir(parents=True)
    for i in range(6):
        image = torch.from_numpy(index_image(i, 64, 48)).permute(2, 0, 1).contiguous()
        (folder / f"{i:06d}.jpg").write_bytes(_encode_jpegs([image], 95)[0].numpy().tobytes())
    cache = FrameCache(tmp_path)
    assert cache.num_frames("england_epl/game/1") == 6
    clip = cache.read("england_epl/game/1", 4, 4)
    assert [decode_index(f) for f in clip[:2]] == [4, 5] and not clip[2:].any()
    with pytest.raises(UserError, match="relative name inside"):
        cache.read("../outside", 0, 1)


def test_video_inputs_lists_dirs_and_ids(tmp_path) -> None:
    (tmp_path / "g1").mkdir()
    (tmp_path / "g2").mkdir()
    for name in ["g1/1.mkv", "g1/2.mkv", "g2/1.mkv", "g2/notes.json"]:
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "videos.txt"
    listing.write_text("# halves\ng1/1.mkv\n\ng2/1.mkv\n")
    assert expand_video_inputs([listing]) == [tmp_path / "g1/1.mkv", tmp_path / "g2/1.mkv"]
    found = expand_video_inputs([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["g1/1.mkv", "g1/2.mkv", "g2/1.mkv"]
    assert video_ids(found) == ["g1/1", "g1/2", "g2/1"]
    assert video_ids([tmp_path / "g1/1.mkv", tmp_path / "g1/2.mkv"]) == ["1", "2"]


@pytest.mark.parametrize("n,world,want", [
    (5, 2, [[0, 2, 4], [1, 3]]),
    (3, 4, [[0], [1], [2], []]),
    (4, 1, [[0, 1, 2, 3]]),
])
def test_shard_splits_every_item_exactly_once(n, world, want) -> None:
    assert [shard(list(range(n)), r, world) for r in range(world)] == want
