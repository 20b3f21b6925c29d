"""One video-id rule for frames, detect, spot and training's data.videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from uglspot.data.inputs import find_video_file, soccernet_id, video_entries
from uglspot.errors import UserError


@pytest.mark.parametrize("given, expected", [
    ("league/season/game/1_224p", "league/season/game/1"),
    ("game/2_720p", "game/2"),
    ("game/2", "game/2"),
    ("1_224p", "1_224p"),  # no game folder: not recognisably a SoccerNet half
    ("game/3_224p", "game/3_224p"),
    ("dive/01__1", "dive/01__1"),
])
def test_soccernet_id(given: str, expected: str) -> None:
    assert soccernet_id(given) == expected


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_folder_ids_are_paths_below_the_folder_and_find_the_files_again(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    touch(videos, "epl/2015/g1/1_224p.mkv", "epl/2015/g1/2_224p.mkv", "epl/2016/g2/1_224p.mkv", "solo.mp4")
    entries = video_entries([videos])
    assert [i for _, i in entries] == ["epl/2015/g1/1", "epl/2015/g1/2", "epl/2016/g2/1", "solo"]
    for path, video_id in entries:  # training's data.videos: VIDEOS finds each file by its id
        assert find_video_file(videos, video_id) == path


def test_list_lines_give_ids_relative_to_the_list(tmp_path: Path) -> None:
    touch(tmp_path, "a/x.mp4", "b/x.mp4", "c.mp4")
    listing = tmp_path / "videos.txt"
    listing.write_text(f"a/x.mp4\n# comment\nb/x.mp4\n{tmp_path / 'c.mp4'}\n")
    assert [i for _, i in video_entries([listing])] == ["a/x", "b/x", "c"]


def test_loose_files_are_named_by_stem_unless_stems_clash(tmp_path: Path) -> None:
    touch(tmp_path, "g1/1.mkv", "g2/1.mkv", "g1/2.mkv")
    assert [i for _, i in video_entries([tmp_path / "g1/1.mkv", tmp_path / "g1/2.mkv"])] == ["1", "2"]
    assert [i for _, i in video_entries([tmp_path / "g1/1.mkv", tmp_path / "g2/1.mkv"])] == ["g1/1", "g2/1"]


def test_the_same_video_twice_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "v/a.mp4")
    with pytest.raises(UserError, match="same video id: a"):
        video_entries([tmp_path / "v", tmp_path / "v" / "a.mp4"])


def test_every_soccernet_half_file_is_found_again_by_the_id_it_gets(tmp_path: Path) -> None:
    """One half rule both ways: a file the id rule names ``<game>/1`` (any
    ``1_<N>p`` resolution) is the file training, predict and the report find
    for ``<game>/1``; the releases' 224p, 720p, 398p files come first."""
    videos = tmp_path / "videos"
    touch(videos, "g1/1_1080p.mkv", "g2/2_720p.mp4", "g3/1_398p.mkv", "g3/1_224p.mkv", "g3/1_1080p.mkv")
    for name, video_id in [("g1/1_1080p.mkv", "g1/1"), ("g2/2_720p.mp4", "g2/2")]:
        path, = [p for p, _ in video_entries([videos / name])]
        assert soccernet_id(f"{Path(name).parent}/{path.stem}") == video_id
        assert find_video_file(videos, video_id) == videos / name
    assert find_video_file(videos, "g3/1") == videos / "g3/1_224p.mkv"
    with pytest.raises(UserError, match="'g1/2': no file"):
        find_video_file(videos, "g1/2")
