from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from uglspot.cli import main

# v1: events at 10 (a), 20 (b), 70 (a) -> gaps 10 and 50 frames = 0.4 s and 2 s at 25 fps.
# v2: one event; v3: none. Events per video 3, 1, 0.
SPLIT = [
    {"video": "v1", "num_frames": 100, "fps": 25, "events": [
        {"frame": 70, "label": "a"}, {"frame": 10, "label": "a"}, {"frame": 20, "label": "b"}]},
    {"video": "v2", "num_frames": 50, "fps": 25, "events": [{"frame": 5, "label": "b"}]},
    {"video": "v3", "num_frames": 10, "fps": 25, "events": []},
]


def run(capsys: pytest.CaptureFixture, *argv: str | Path) -> tuple[int, str, str]:
    code = main(["stats", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    (tmp_path / "class.txt").write_text("a\nb\nc\n")
    (tmp_path / "test.json").write_text(json.dumps(SPLIT))
    (tmp_path / "val.json").write_text(json.dumps(
        [{"video": "w", "num_frames": 30, "fps": -1, "events": [{"frame": 1, "label": "c"}, {"frame": 30, "label": "c"}]}]))
    return tmp_path


def test_single_split_json(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, dataset / "test.json", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["classes"] == ["a", "b", "c"] and list(data["splits"]) == ["test"] and "all" not in data
    split = data["splits"]["test"]
    assert split["videos"] == 3 and split["frames"] == 160 and split["events"] == 4
    assert split["events_per_class"] == {"a": 2, "b": 2, "c": 0}
    assert split["events_per_video"] == {"min": 0, "median": 1, "mean": pytest.approx(4 / 3), "max": 3}
    assert split["gap_frames"] == {"min": 10, "median": 30, "mean": 30, "max": 50}
    assert split["gap_seconds"] == pytest.approx({"min": .4, "median": 1.2, "mean": 1.2, "max": 2.0})


def test_single_split_text(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, dataset / "test.json")
    assert code == 0
    assert "3 videos, 160 frames, 4 events" in out
    assert "events per video: min 0 / median 1 / mean 1.3 / max 3" in out
    assert "frames: min 10 / median 30 / mean 30 / max 50" in out
    assert "seconds: min 0.40s / median 1.20s / mean 1.20s / max 2s" in out


def test_dataset_folder_has_every_split_and_the_total(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, dataset, "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data["splits"]) == ["test", "val"]
    val = data["splits"]["val"]
    # fps = -1 (as in FineDiving): gaps in frames only; the event at frame 30 of 30 is past the end.
    assert val["gap_frames"]["max"] == 29 and val["gap_seconds"] is None and val["events_past_end"] == 1
    assert data["all"]["events"] == 6 and data["all"]["events_per_class"] == {"a": 2, "b": 2, "c": 2}
    assert data["all"]["gap_frames"] == {"min": 10, "median": 29, "mean": pytest.approx(89 / 3), "max": 50}
    code, out, _ = run(capsys, dataset)
    assert "all 2 splits: 4 videos" in out and "n/a (no video has fps > 0)" in out
    assert "(1 at or past the end of their video)" in out


def test_plot_writes_a_png_atomically(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_png = tmp_path / "plots" / "stats.png"
    code, out, _ = run(capsys, dataset, "--plot", out_png)
    assert code == 0 and f"wrote {out_png}" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000
    assert sorted(p.name for p in out_png.parent.iterdir()) == ["stats.png"]  # no temporary file left
    code, _, err = run(capsys, dataset, "--plot", tmp_path / "stats.jpg")
    assert code == 1 and "give the file a .png name" in err


def test_folder_with_a_bad_split_reports_it_after_the_others(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    (dataset / "train.json").write_text('[{"video": "x", "num_frames": 5, "fps": 25, "events": '
                                        '[{"frame": 1, "label": "zz"}]}]')
    code, out, err = run(capsys, dataset)
    assert code == 1
    assert "test.json: 3 videos" in out and "val.json: 1 videos" in out
    assert "1 label files failed:" in err and "label 'zz' is not in class.txt" in err


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nothing-here", "no such file or folder"),
    (lambda d: (d / "class.txt").unlink() or d, "no class.txt in this folder"),
    (lambda d: (d / "test.json").write_text("[{,") and d / "test.json", r"test\.json:1:3: malformed JSON"),
])
def test_bad_paths(dataset: Path, capsys: pytest.CaptureFixture, make, message: str) -> None:
    code, _, err = run(capsys, make(dataset))
    assert code == 1
    assert re.search(message, err), err


def test_file_without_class_list_uses_the_labels_it_finds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "labels.json").write_text(json.dumps(SPLIT))
    code, out, _ = run(capsys, tmp_path / "labels.json", "--json")
    assert code == 0 and json.loads(out)["splits"]["labels"]["events_per_class"] == {"a": 2, "b": 2}


def test_real_finediving_folder(shared_labels: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, shared_labels / "finediving", "--json")
    assert code == 0
    data = json.loads(out)
    assert {k: v["videos"] for k, v in data["splits"].items()} == {"test": 749, "train": 1801, "val": 450}
    assert data["splits"]["test"]["events"] == 1765 and data["all"]["events"] == 1765 + 4182 + 1063
    assert data["all"]["gap_seconds"] is None  # FineDiving has fps = -1
