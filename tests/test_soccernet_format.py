"""SoccerNet Labels-v2.json / results_spotting.json reading and writing, and
the conversion to and from E2E-Spot JSON, on hand-made and real labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from uglspot.data.labels import Event, Video, VideoPredictions, read_e2e_labels
from uglspot.data.soccernet import (GamePredictions, Prediction, e2e_to_soccernet, find_games, format_game_time,
                                    frame_to_position, game_dir, labels_to_json, load_json_fast, parse_game_time, parse_labels,
                                    parse_game_predictions, position_to_frame, prediction_position,
                                    predictions_to_json, predictions_to_soccernet, read_labels_dir,
                                    read_predictions_dir, soccernet_to_e2e, write_game_predictions, write_labels)
from uglspot.errors import BatchFailures, UserError

GAME = "england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley"

LABELS = {
    "UrlLocal": GAME + "/",
    "gameHomeTeam": "Chelsea",
    "annotations": [
        {"gameTime": "1 - 00:02", "label": "Kick-off", "position": "2440", "team": "home", "visibility": "visible"},
        {"gameTime": "1 - 05:00", "label": "Throw-in", "position": "300480", "team": "away",
         "visibility": "not shown", "source": "manual"},
        {"gameTime": "2 - 44:59", "label": "Ball out of play", "position": "2699999", "team": "not applicable",
         "visibility": "visible"},
    ],
}


@pytest.mark.parametrize(("text", "half", "clock_s"), [
    ("1 - 05:00", 1, 300), ("2 - 44:59", 2, 2699), ("1 - 00:00", 1, 0), ("2 - 105:07", 2, 6307),
    ("1-05:00", 1, 300), (" 2 - 5:03 ", 2, 303),
])
def test_parse_game_time(text: str, half: int, clock_s: int) -> None:
    assert parse_game_time(text, "x") == (half, clock_s)


@pytest.mark.parametrize("text", ["", "1 - 5", "one - 05:00", "1 - 05:60", "1 05:00", "1 - 05:00:00", None, 300])
def test_bad_game_time_is_a_user_error_with_the_value(text: object) -> None:
    with pytest.raises(UserError, match=r"where: gameTime .* does not parse"):
        parse_game_time(text, "where")


@pytest.mark.parametrize(("half", "position", "text"), [
    (1, 0, "1 - 00:00"), (1, 300_480, "1 - 05:00"), (2, 2_699_999, "2 - 44:59"), (2, 7_260_000, "2 - 121:00"),
])
def test_format_game_time(half: int, position: int, text: str) -> None:
    assert format_game_time(half, position) == text


@pytest.mark.parametrize(("position", "fps", "frame"), [
    (0, 2.0, 0), (499, 2.0, 0), (500, 2.0, 1), (2440, 25 / 12, 5), (300_480, 25 / 12, 626), (1000, 25.0, 25),
])
def test_position_to_frame_truncates(position: int, fps: float, frame: int) -> None:
    assert position_to_frame(position, fps) == frame


@pytest.mark.parametrize("fps", [2.0, 25 / 12, 2.169490740740741, 25.0, 29.97, 1000.0])
def test_frame_to_position_is_the_first_millisecond_of_the_frame(fps: float) -> None:
    for frame in [0, 1, 2, 5, 99, 1234, 5624, 13_999]:
        position = frame_to_position(frame, fps)
        assert position_to_frame(position, fps) == frame
        assert position == 0 or position_to_frame(position - 1, fps) == frame - 1


@pytest.mark.parametrize(("frame", "fps", "position"), [(0, 2.0, 0), (1, 2.0, 500), (5, 25 / 12, 2400),
                                                        (7, 25 / 12, 3360), (3, 3.0, 1000)])
def test_prediction_position(frame: int, fps: float, position: int) -> None:
    assert prediction_position(frame, fps) == position


def test_labels_keep_every_key_and_write_back_the_same_json() -> None:
    labels = parse_labels(LABELS, "Labels-v2.json", GAME)
    first, second, third = labels.annotations
    assert (first.half, first.position, first.label, first.team, first.shown) == (1, 2440, "Kick-off", "home", True)
    assert (second.visibility, second.shown, second.extra) == ("not shown", False, {"source": "manual"})
    assert third.time_ms == 2_699_999 and third.half == 2
    assert labels.extra == {"UrlLocal": GAME + "/", "gameHomeTeam": "Chelsea"}
    assert labels_to_json(labels) == LABELS


def test_label_without_position_uses_game_time() -> None:
    labels = parse_labels({"annotations": [{"gameTime": "2 - 01:30", "label": "Goal"}]}, "f", "g")
    annotation = labels.annotations[0]
    assert (annotation.position, annotation.time_ms, annotation.half) == (None, 90_000, 2)
    assert labels_to_json(labels) == {"annotations": [{"gameTime": "2 - 01:30", "label": "Goal"}]}


@pytest.mark.parametrize(("annotation", "message"), [
    ({"gameTime": "1 - 5:0", "label": "Goal", "position": "1"}, r"f: annotation #1: gameTime '1 - 5:0' does not"),
    ({"label": "Goal", "position": "1"}, r"f: annotation #1: gameTime None does not parse"),
    ({"gameTime": "1 - 05:00", "position": "1"}, r"f: annotation #1: missing key 'label'"),
    ({"gameTime": "1 - 05:00", "label": "Goal", "position": "soon"}, r"annotation #1: position 'soon' is not a num"),
    ({"gameTime": "1 - 05:00", "label": "Goal", "position": -5}, r"annotation #1: position -5 is negative"),
    ("text", r"f: annotation #1: expected a JSON object"),
])
def test_bad_annotation_names_file_index_and_value(annotation: object, message: str) -> None:
    data = {"annotations": [LABELS["annotations"][0], annotation]}
    with pytest.raises(UserError, match=message):
        parse_labels(data, "f", "g")


def test_labels_without_annotations_list_are_an_error() -> None:
    with pytest.raises(UserError, match="missing key 'annotations'"):
        parse_labels({"UrlLocal": ""}, "f", "g")
    with pytest.raises(UserError, match="expected a JSON object"):
        parse_labels([], "f", "g")


PREDICTIONS = {
    "UrlLocal": GAME,
    "predictions": [
        {"gameTime": "1 - 00:02", "label": "Kick-off", "position": "2440", "half": "1", "confidence": "0.25"},
        {"gameTime": "2 - 00:01", "label": "Goal", "position": 1500, "half": 2, "confidence": 0.875, "rank": 3},
        {"gameTime": "whenever", "label": "Goal", "position": 1500.7, "half": 2, "confidence": -1},
    ],
}


def test_predictions_accept_numbers_and_numeric_strings_and_keep_other_keys() -> None:
    game = parse_game_predictions(PREDICTIONS, "results_spotting.json", GAME)
    assert game.half.tolist() == [1, 2, 2]
    assert game.position.tolist() == [2440, 1500, 1500]  # a fraction truncates, as int() does
    assert game.confidence.tolist() == [0.25, 0.875, -1.0]
    assert game.label == ["Kick-off", "Goal", "Goal"]
    records = game.predictions()
    assert records[1].extra == {"rank": 3} and records[2].game_time == "whenever"  # predictions' gameTime is not read
    written = predictions_to_json(game)
    assert written["UrlLocal"] == GAME
    assert written["predictions"][1] == {"gameTime": "2 - 00:01", "label": "Goal", "position": "1500", "half": "2",
                                         "confidence": 0.875, "rank": 3}


@pytest.mark.parametrize(("change", "message"), [
    ({"half": None}, r"prediction #1: half None is not a number"),
    ({"position": "late"}, r"prediction #1: position 'late' is not a number"),
    ({"position": -100}, r"prediction #1: position -100 is negative"),
    ({"position": 10**30}, r"prediction #1: position 1000000000000000000000000000000 is too large"),
    ({"position": float("inf")}, r"prediction #1: position inf is not a number"),
    ({"confidence": "high"}, r"prediction #1: confidence 'high' is not a number"),
    ({"confidence": None}, r"prediction #1: confidence None is not a number"),
    ({"label": 3}, r"prediction #1: label should be a string"),
])
def test_bad_prediction_names_file_and_index(change: dict, message: str) -> None:
    records = [dict(r) for r in PREDICTIONS["predictions"]]
    records[1].update(change)
    with pytest.raises(UserError, match=message):
        parse_game_predictions({"predictions": records}, "f", "g")


def test_prediction_missing_a_key() -> None:
    records = [dict(r) for r in PREDICTIONS["predictions"]]
    del records[2]["confidence"]
    with pytest.raises(UserError, match=r"prediction #2: missing key 'confidence'"):
        parse_game_predictions({"predictions": records}, "f", "g")


def test_games_are_found_at_any_depth_and_read_back(tmp_path: Path) -> None:
    games = ["a/b/c", "x/y", "deep/er/than/usual/game", "single"]
    for index, game in enumerate(games):
        data = {"annotations": [{"gameTime": "1 - 00:01", "label": "Goal", "position": str(1000 + index)}]}
        write_labels(tmp_path, parse_labels(data, "mem", game))
    (tmp_path / "x" / "notes.json").write_text("{}")  # other files are not games
    assert find_games(tmp_path, "Labels-v2.json") == sorted(games)
    read = read_labels_dir(tmp_path)
    assert [g.game for g in read] == sorted(games)
    assert {g.game: g.annotations[0].position for g in read}["single"] == 1003


def test_a_bad_file_among_many_is_listed_after_reading_them_all(tmp_path: Path) -> None:
    for game in ["g1", "g2", "g3"]:
        (tmp_path / game).mkdir()
        (tmp_path / game / "results_spotting.json").write_text('{"predictions": []}')
    (tmp_path / "g1" / "results_spotting.json").write_text('{"predictions": [}')
    (tmp_path / "g3" / "results_spotting.json").write_text('{"predictions": [{"half": 1}]}')
    with pytest.raises(BatchFailures) as info:
        read_predictions_dir(tmp_path)
    assert [name for name, _ in info.value.failures] == ["g1", "g3"]
    assert "results_spotting.json:1:18: malformed JSON" in info.value.failures[0][1]


@pytest.mark.parametrize("game", ["../escape", "a/../../b", "/abs/game", "a//b", "a/./b", "", "a\\b"])
def test_game_paths_that_would_leave_the_output_folder_are_refused(tmp_path: Path, game: str) -> None:
    with pytest.raises(UserError, match="cannot be a folder path"):
        game_dir(tmp_path, game, "src")


def test_fast_json_reading_gives_what_the_standard_library_gives(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = {"predictions": [{"confidence": float(x), "position": str(int(y))}
                            for x, y in zip(rng.random(500) ** 7, rng.integers(0, 10**7, 500))]}
    data["predictions"].append({"confidence": 0.1 + 0.2, "position": 2**40})
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    assert load_json_fast(path) == data
    path.write_text('{"predictions": [{"confidence": NaN}]}')  # not JSON, but Python's json and SoccerNet read it
    assert np.isnan(load_json_fast(path)["predictions"][0]["confidence"])
    path.write_text('{"predictions": [\n}')
    with pytest.raises(UserError, match=r"f.json:2:1: malformed JSON"):
        load_json_fast(path)


def test_written_predictions_read_back_identically(tmp_path: Path) -> None:
    original = GamePredictions.from_predictions(GAME, [Prediction(1, 2440, "Kick-off", 0.25),
                                                       Prediction(2, 1500, "Goal", 0.875, "2 - 00:01", {"k": 1})],
                                                {"UrlLocal": GAME})
    path = write_game_predictions(tmp_path, original)
    assert path == tmp_path / GAME / "results_spotting.json"
    data = json.loads(path.read_text())
    assert data["predictions"][0]["gameTime"] == "1 - 00:02"
    back = read_predictions_dir(tmp_path)[0]
    assert back.game == GAME and back.extra == {"UrlLocal": GAME}
    assert back.predictions() == [Prediction(1, 2440, "Kick-off", 0.25, "1 - 00:02"),  # gameTime now written
                                  Prediction(2, 1500, "Goal", 0.875, "2 - 00:01", {"k": 1})]


# ---------------------------------------------------------------- conversion


def test_soccernet_to_e2e_at_a_chosen_fps() -> None:
    labels = parse_labels(LABELS, "f", GAME)
    videos = soccernet_to_e2e([labels], fps=25 / 12)
    assert [v.video for v in videos] == [GAME + "/1", GAME + "/2"]
    first, second = videos
    assert first.events == [Event(5, "Kick-off", "home; visible"), Event(626, "Throw-in", "away; not shown")]
    assert second.events == [Event(5624, "Ball out of play", "not applicable; visible")]
    # without a video, num_frames is one past the last event
    assert (first.num_frames, second.num_frames, first.fps) == (627, 5625, 25 / 12)
    with_duration = soccernet_to_e2e([labels], fps=2.0, half_duration_s=45 * 60)
    assert [v.num_frames for v in with_duration] == [5400, 5400]


def test_soccernet_to_e2e_takes_fps_and_length_from_a_reference() -> None:
    labels = parse_labels(LABELS, "f", GAME)
    reference = {GAME + "/1": Video(GAME + "/1", 9000, 2.5, width=398, height=224)}
    first, second = soccernet_to_e2e([labels], fps=2.0, reference=reference)
    assert (first.fps, first.num_frames, first.width, first.events[1].frame) == (2.5, 9000, 398, 751)
    assert (second.fps, second.num_frames, second.width) == (2.0, 5400, None)


def test_soccernet_to_e2e_refuses_a_third_half() -> None:
    labels = parse_labels({"annotations": [{"gameTime": "3 - 00:10", "label": "Goal"}]}, "f", "g")
    with pytest.raises(UserError, match="half 3"):
        soccernet_to_e2e([labels], fps=2.0)


def test_events_in_one_frame_keep_file_order_and_sort_by_frame() -> None:
    data = {"annotations": [
        {"gameTime": "1 - 00:10", "label": "Foul", "position": "10000"},
        {"gameTime": "1 - 00:01", "label": "Goal", "position": "1200"},
        {"gameTime": "1 - 00:01", "label": "Corner", "position": "1000"},
    ]}
    (video, _) = soccernet_to_e2e([parse_labels(data, "f", "g")], fps=2.0)
    assert [(e.frame, e.label) for e in video.events] == [(2, "Goal"), (2, "Corner"), (20, "Foul")]
    assert video.events[0].comment == "not applicable; visible"


def test_soccernet_to_e2e_to_soccernet_round_trip() -> None:
    labels = parse_labels(LABELS, "f", GAME)
    fps = 25 / 12
    back = e2e_to_soccernet(soccernet_to_e2e([labels], fps), "mem")
    assert [g.game for g in back] == [GAME]
    for before, after in zip(labels.annotations, back[0].annotations, strict=True):
        assert (after.half, after.label, after.team, after.visibility) == (
            before.half, before.label, before.team, before.visibility)
        # positions move to the first millisecond of their frame
        assert 0 <= before.position - after.position < 1000 / fps
        assert position_to_frame(after.position, fps) == position_to_frame(before.position, fps)
        assert after.game_time == format_game_time(after.half, after.position)
    # and from there on the conversion is exact
    assert soccernet_to_e2e(back, fps) == soccernet_to_e2e([labels], fps)


def test_e2e_to_soccernet_defaults_for_comments_without_team_and_visibility() -> None:
    video = Video("lg/s/g/2", 100, 2.0, [Event(3, "Goal", ""), Event(4, "Goal", "away; not shown")])
    (game,) = e2e_to_soccernet([video], "mem")
    assert [(a.half, a.position, a.team, a.visibility) for a in game.annotations] == [
        (2, 1500, "not applicable", "visible"), (2, 2000, "away", "not shown")]
    assert labels_to_json(game)["annotations"][0] == {"gameTime": "2 - 00:01", "label": "Goal", "position": "1500",
                                                      "team": "not applicable", "visibility": "visible"}


@pytest.mark.parametrize("video_id", ["game/3", "game", "game/first", "../x/1", "/abs/1"])
def test_e2e_ids_that_are_not_soccernet_halves_are_refused(video_id: str) -> None:
    with pytest.raises(UserError, match=r"mem: .*(not a SoccerNet half|cannot be a folder path)"):
        e2e_to_soccernet([Video(video_id, 10, 2.0)], "mem")


def test_predictions_to_soccernet() -> None:
    predictions = [VideoPredictions("lg/s/g/1", [Event(5, "Goal", score=0.5)]),
                   VideoPredictions("lg/s/g/2", [Event(7, "Corner", score=0.25)]),
                   VideoPredictions("lg/s/h/1", [])]
    games = predictions_to_soccernet(predictions, 25 / 12, "pred.json")
    assert [g.game for g in games] == ["lg/s/g", "lg/s/h"]
    records = games[0].predictions()
    assert [(p.half, p.position, p.label, p.confidence, p.game_time) for p in records] == [
        (1, 2400, "Goal", 0.5, "1 - 00:02"), (2, 3360, "Corner", 0.25, "2 - 00:03")]
    per_video = predictions_to_soccernet(predictions[:1], {"lg/s/g/1": 2.0}, "pred.json")
    assert per_video[0].position.tolist() == [2500]
    with pytest.raises(UserError, match="'lg/s/g/2' is not in the reference"):
        predictions_to_soccernet(predictions, {"lg/s/g/1": 2.0}, "pred.json")


@pytest.mark.parametrize("split", ["val", "test"])
def test_shared_soccernetv2_labels_survive_e2e_to_soccernet_and_back(shared_labels: Path, split: str) -> None:
    """The shared labels were made with frame = int(position / 1000 * fps) at
    each half's own fps; converting them to SoccerNet and back with those fps
    gives the same file: frames, labels, comments, event order."""
    path = shared_labels / "soccernetv2" / f"{split}.json"
    videos = read_e2e_labels(path, allow_past_end=True)
    games = e2e_to_soccernet(videos, str(path))
    assert len(games) == 100
    comments = {e.comment for v in videos for e in v.events}
    assert comments <= {f"{t}; {v}" for t in ("home", "away", "not applicable") for v in ("visible", "not shown")}
    back = soccernet_to_e2e(games, fps=None, reference={v.video: v for v in videos})
    assert back == videos
    assert sum(len(g.annotations) for g in games) == sum(len(v.events) for v in videos)
    assert {np.sign(a.position) for g in games for a in g.annotations} <= {0, 1}
