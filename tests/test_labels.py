from __future__ import annotations

import json
from pathlib import Path

import pytest

from uglspot.data.labels import (
    Event, Video, VideoPredictions, check_predictions_match, find_class_list, read_class_list,
    read_e2e_labels, read_predictions, write_e2e_labels, write_predictions,
)
from uglspot.errors import UserError

EXPECTED_VIDEOS = {  # (dataset, split): number of videos, from the labels README
    ("finediving", "train"): 1801, ("finediving", "val"): 450, ("finediving", "test"): 749,
    ("finegym", "val"): 944, ("finegym", "test"): 1103,
    ("fs_comp", "train"): 178, ("fs_comp", "val"): 59, ("fs_comp", "test"): 134,
    ("fs_perf", "train"): 183, ("fs_perf", "val"): 94, ("fs_perf", "test"): 94,
    ("tennis", "train"): 1368, ("tennis", "val"): 455, ("tennis", "test"): 1622,
    ("soccernetv2", "val"): 200, ("soccernetv2", "test"): 200, ("soccernetv2", "challenge"): 100,
}
# Events at or after num_frames in the real files (videos that end before their labels).
PAST_END = {("soccernetv2", "test"): 5, ("soccernetv2", "val"): 8}
EXPECTED_TEST_EVENTS = {"finediving": 1765, "finegym": 16176, "fs_comp": 1326, "fs_perf": 930,
                        "tennis": 19173, "soccernetv2": 22551}


def test_every_shared_label_file_reads_and_round_trips(shared_labels: Path, tmp_path: Path) -> None:
    files = sorted(shared_labels.glob("*/*.json"))
    assert len(files) == len(EXPECTED_VIDEOS)
    for path in files:
        classes = read_class_list(find_class_list(path))
        videos = read_e2e_labels(path, classes, allow_past_end=True)
        past_end = sum(e.frame >= v.num_frames for v in videos for e in v.events)
        assert past_end == PAST_END.get((path.parent.name, path.stem), 0), path
        assert len(videos) == EXPECTED_VIDEOS[(path.parent.name, path.stem)], path
        if path.stem == "test":
            assert sum(len(v.events) for v in videos) == EXPECTED_TEST_EVENTS[path.parent.name]
        out = tmp_path / f"{path.parent.name}_{path.stem}.json"
        write_e2e_labels(videos, out)
        expected = json.loads(path.read_text())
        for record in expected:  # writers recount num_events; a few real files disagree with their lists
            record["num_events"] = len(record["events"])
        assert json.loads(out.read_text()) == expected, path


def test_soccernet_labels_carry_team_and_visibility(shared_labels: Path) -> None:
    with pytest.raises(UserError, match="frame 5625 is outside .*--allow-events-past-end"):
        read_e2e_labels(shared_labels / "soccernetv2" / "test.json", past_end_option="--allow-events-past-end")
    with pytest.raises(UserError, match="frame 5625 is outside") as caught:  # a reader with no such option
        read_e2e_labels(shared_labels / "soccernetv2" / "test.json")
    assert "--allow" not in str(caught.value)
    videos = read_e2e_labels(shared_labels / "soccernetv2" / "test.json", allow_past_end=True)
    comments = {e.comment for v in videos for e in v.events}
    assert "home; visible" in comments and "away; not shown" in comments
    assert all(2.0 < v.fps < 2.3 for v in videos)  # 25/12 fps, a little more where the source was 30 fps


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '[\n  {"video": "a",\n   "num_frames": 10,,\n')
    with pytest.raises(UserError, match=r"bad\.json:3:\d+: malformed JSON"):
        read_e2e_labels(path)


@pytest.mark.parametrize("events, message", [
    ([{"frame": 3, "label": "dive"}], r"video 'v1', event #0: label 'dive' is not in class.txt"),
    ([{"frame": 11, "label": "goal"}], r"video 'v1', event #0: frame 11 is outside \[0, 10\)"),
    ([{"frame": -1, "label": "goal"}], r"frame -1 is outside"),
    ([{"label": "goal"}], r"event #0: missing key 'frame'"),
])
def test_bad_events_are_located(tmp_path: Path, events: list, message: str) -> None:
    data = [{"video": "v1", "num_frames": 10, "fps": 25, "events": events}]
    path = _write(tmp_path, "l.json", json.dumps(data))
    with pytest.raises(UserError, match=message):
        read_e2e_labels(path, ["goal"])


def test_duplicate_video_ids_are_an_error(tmp_path: Path) -> None:
    data = [{"video": "v1", "num_frames": 10, "fps": 25, "events": []}] * 2
    with pytest.raises(UserError, match="duplicate video id"):
        read_e2e_labels(_write(tmp_path, "l.json", json.dumps(data)))


def test_events_at_first_and_last_frame_are_valid(tmp_path: Path) -> None:
    data = [{"video": "v", "num_frames": 5, "fps": 25,
             "events": [{"frame": 0, "label": "goal"}, {"frame": 4, "label": "goal"}]}]
    videos = read_e2e_labels(_write(tmp_path, "l.json", json.dumps(data)), ["goal"])
    assert [e.frame for e in videos[0].events] == [0, 4]


def test_predictions_round_trip_and_are_checked_against_truth(tmp_path: Path) -> None:
    preds = [VideoPredictions("v", [Event(3, "goal", score=0.9), Event(4, "goal", score=0.1)])]
    write_predictions(preds, tmp_path / "p.json")
    assert read_predictions(tmp_path / "p.json") == preds
    truth = [Video("v", 10, 25.0, [])]
    check_predictions_match(preds, truth, ["goal"], "p.json")
    with pytest.raises(UserError, match="'w' has predictions but is not in the ground truth"):
        check_predictions_match([VideoPredictions("w", [])], truth, ["goal"], "p.json")
    with pytest.raises(UserError, match="label 'card' is not in class.txt"):
        check_predictions_match([VideoPredictions("v", [Event(1, "card", score=1.0)])], truth, ["goal"], "p.json")


def test_class_list_rejects_duplicates(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="listed twice"):
        read_class_list(_write(tmp_path, "class.txt", "a\nb\na\n"))
