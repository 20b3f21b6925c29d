"""``uglspot eval soccernet`` and ``uglspot convert`` end to end on files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _soccernet_helpers import game_time, random_labels, random_predictions, write_tree
from uglspot.cli import main
from uglspot.data.soccernet import read_labels_dir, read_predictions_dir
from uglspot.metrics.soccernet import SOCCERNET_V2_CLASSES, average_map

GAMES = ("lg/2020/a", "lg/2020/b", "other/c")


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    labels = {game: random_labels(rng, 30, 8) for game in GAMES}
    write_tree(tmp_path / "labels", labels, "Labels-v2.json")
    write_tree(tmp_path / "pred", {g: random_predictions(rng, labels[g]) for g in GAMES}, "results_spotting.json")
    return tmp_path / "labels", tmp_path / "pred"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


IGNORED = ("uglspot eval soccernet: ignored 1 label class not among the 17 SoccerNet-v2 classes the average is "
           "over: 'Not a class' (3 events)\n")


def test_eval_json_has_exactly_the_agreed_keys_and_the_metric_numbers(
        dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    code, out, err = run(capsys, "eval", "soccernet", labels, pred, "--metric", "loose", "--json")
    assert code == 0 and err == IGNORED  # random_labels adds one event of 'Not a class' per game
    result = json.loads(out)
    assert list(result) == ["metric", "a_mAP", "a_mAP_per_class", "a_mAP_visible", "a_mAP_per_class_visible",
                            "a_mAP_unshown", "a_mAP_per_class_unshown"]
    assert result["metric"] == "loose"
    for key in ("a_mAP_per_class", "a_mAP_per_class_visible", "a_mAP_per_class_unshown"):
        assert list(result[key]) == list(SOCCERNET_V2_CLASSES)
        assert all(0 <= v <= 1 for v in result[key].values())
    expected = average_map(read_labels_dir(labels), read_predictions_dir(pred), "loose").to_json()
    assert result == expected and 0 < result["a_mAP"] <= 1


def test_eval_table_in_percent(dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    code, out, _ = run(capsys, "eval", "soccernet", labels, pred)
    expected = average_map(read_labels_dir(labels), read_predictions_dir(pred), "tight")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "SoccerNet tight average-mAP (%), 3 games, the mean over the 17 SoccerNet-v2 classes below"
    assert lines[1].split() == ["class", "all", "visible", "unshown"]
    assert len(lines) == 2 + len(SOCCERNET_V2_CLASSES) + 1
    last = lines[-1].split()
    assert last[0] == "Average-mAP" and float(last[1]) == pytest.approx(100 * expected.a_mAP, abs=0.006)
    goal = next(line for line in lines if line.startswith("Goal "))
    assert float(goal.split()[-1]) == pytest.approx(100 * expected.a_mAP_per_class_unshown["Goal"], abs=0.006)


def test_games_without_predictions_are_counted_on_one_stderr_line(
        dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    (pred / "lg/2020/b/results_spotting.json").unlink()
    code, out, err = run(capsys, "eval", "soccernet", labels, pred, "--json")
    assert code == 0
    assert err.count("\n") == 2 and "1 of 3 games have no results_spotting.json" in err and err.endswith(IGNORED)
    empty = pred / "lg/2020/b/results_spotting.json"
    empty.write_text('{"predictions": []}')
    assert json.loads(out) == json.loads(run(capsys, "eval", "soccernet", labels, pred, "--json")[1])


def test_split_list_scores_only_the_listed_games(dataset: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    listing = tmp_path / "split.json"
    listing.write_text(json.dumps(["lg/2020/a", "other/c"]))
    code, out, _ = run(capsys, "eval", "soccernet", labels, pred, "--split-list", listing, "--json")
    chosen = [g for g in read_labels_dir(labels) if g.game != "lg/2020/b"]
    assert code == 0
    assert json.loads(out) == average_map(chosen, [p for p in read_predictions_dir(pred) if p.game != "lg/2020/b"],
                                          "tight").to_json()
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"lg": {"2020": ["a"]}, "other": ["c"]}))
    assert run(capsys, "eval", "soccernet", labels, pred, "--split-list", nested, "--json")[1] == out
    text = tmp_path / "split.txt"
    text.write_text("lg/2020/a\nother/c\n\n")
    assert run(capsys, "eval", "soccernet", labels, pred, "--split-list", text, "--json")[1] == out
    text.write_text("lg/2020/zzz\n")
    code, _, err = run(capsys, "eval", "soccernet", labels, pred, "--split-list", text)
    assert code == 1 and "'lg/2020/zzz'" in err


def test_predictions_for_an_unknown_game_are_an_error(dataset: tuple[Path, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    write_tree(pred, {"lg/2020/zz": {"predictions": []}}, "results_spotting.json")
    code, out, err = run(capsys, "eval", "soccernet", labels, pred)
    assert code == 1 and out == ""
    assert err.startswith("uglspot eval: error: ") and "'lg/2020/zz'" in err and err.count("\n") == 1


def test_a_bad_game_time_names_file_annotation_and_value(dataset: tuple[Path, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    path = labels / "other/c/Labels-v2.json"
    data = json.loads(path.read_text())
    data["annotations"][4]["gameTime"] = "1 - 5 min"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "eval", "soccernet", labels, pred)
    assert code == 1 and out == ""
    assert f"{path}: annotation #4: gameTime '1 - 5 min' does not parse" in err
    assert "Traceback" not in err


def test_malformed_json_names_line_and_column(dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    labels, pred = dataset
    path = pred / "lg/2020/a/results_spotting.json"
    path.write_text('{\n  "predictions": [\n    {"half": 1,}\n  ]\n}')
    code, _, err = run(capsys, "eval", "soccernet", labels, pred)
    assert code == 1 and f"{path}:3:" in err and "malformed JSON" in err


def test_empty_labels_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "eval", "soccernet", tmp_path / "empty", tmp_path / "empty")
    assert code == 1 and "no Labels-v2.json found" in err


# ---------------------------------------------------------------- convert


def test_convert_round_trip_and_scoring_through_e2e(dataset: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    labels, _ = dataset
    e2e, classes = tmp_path / "e2e.json", tmp_path / "class.txt"
    code, _, err = run(capsys, "convert", "soccernet-to-e2e", labels, e2e, "--fps", "2", "--class-list", classes,
                       "--half-duration", "3000")
    assert code == 0 and "wrote 6 halves" in err
    videos = json.loads(e2e.read_text())
    assert [v["video"] for v in videos] == [f"{g}/{h}" for g in sorted(GAMES) for h in (1, 2)]
    assert all(v["num_frames"] == 6000 and v["fps"] == 2.0 for v in videos)
    found = {e["label"] for v in videos for e in v["events"]}
    assert classes.read_text().splitlines() == sorted(found)

    back = tmp_path / "back"
    assert run(capsys, "convert", "e2e-to-soccernet", e2e, back)[0] == 0
    again = tmp_path / "again.json"
    assert run(capsys, "convert", "soccernet-to-e2e", back, again, "--reference", e2e)[0] == 0
    assert json.loads(again.read_text()) == videos

    # ground truth as predictions, through the E2E form: every event found at 2 fps
    predictions = [{"video": v["video"], "events": [{"frame": e["frame"], "label": e["label"], "score": 0.9}
                                                    for e in v["events"]]} for v in videos]
    pred_json = tmp_path / "pred.json"
    pred_json.write_text(json.dumps(predictions))
    out_dir = tmp_path / "pred_sn"
    assert run(capsys, "convert", "predictions-to-soccernet", pred_json, out_dir, "--reference", e2e)[0] == 0
    code, out, _ = run(capsys, "eval", "soccernet", back, out_dir, "--json", "--metric", "at1")
    result = json.loads(out)
    present = {c for c in SOCCERNET_V2_CLASSES if c in found}
    assert all(result["a_mAP_per_class"][c] == pytest.approx(1.0) for c in present)
    assert result["a_mAP"] == pytest.approx(len(present) / len(SOCCERNET_V2_CLASSES))


def test_convert_refuses_to_write_over_inputs_or_existing_files(dataset: tuple[Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    labels, _ = dataset
    victim = labels / "other/c/Labels-v2.json"
    before = victim.read_bytes()
    code, _, err = run(capsys, "convert", "soccernet-to-e2e", labels, victim, "--fps", "2")
    assert code == 1 and "would overwrite an input" in err and victim.read_bytes() == before

    e2e = tmp_path / "e2e.json"
    assert run(capsys, "convert", "soccernet-to-e2e", labels, e2e, "--fps", "2")[0] == 0
    code, _, err = run(capsys, "convert", "e2e-to-soccernet", e2e, labels)
    assert code == 1 and "already exists" in err and "--overwrite" in err and victim.read_bytes() == before
    assert run(capsys, "convert", "e2e-to-soccernet", e2e, labels, "--overwrite")[0] == 0


def test_convert_refuses_video_ids_that_leave_the_output_folder(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "e2e.json"
    source.write_text(json.dumps([{"video": "../../etc/1", "num_frames": 10, "fps": 2.0, "events": []}]))
    code, _, err = run(capsys, "convert", "e2e-to-soccernet", source, tmp_path / "out")
    assert code == 1 and "cannot be a folder path" in err
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "etc").exists()


def test_convert_needs_an_fps(dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels, _ = dataset
    code, _, err = run(capsys, "convert", "soccernet-to-e2e", labels, tmp_path / "x.json")
    assert code == 1 and "--fps" in err
    with pytest.raises(SystemExit) as exit_info:  # refused by the option's type, before any file is read
        run(capsys, "convert", "soccernet-to-e2e", labels, tmp_path / "x.json", "--fps", "0")
    assert exit_info.value.code == 2 and "argument --fps: must be a frame rate above 0 and at most 1000" in capsys.readouterr().err


def test_eval_lists_the_classes_it_ignored_in_labels_and_predictions(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def event(label: str, ms: int, **extra: str) -> dict:
        return {"gameTime": game_time(1, ms), "label": label, "position": str(ms), **extra}

    labels = {"annotations": [event("Goal", 60_000, team="home", visibility="visible"),
                              event("Dive", 70_000, team="home", visibility="visible"),
                              event("Dive", 80_000, team="home", visibility="visible"),
                              event("Timeout", 90_000, team="home", visibility="visible")]}
    predictions = {"predictions": [event("Goal", 60_000, confidence="0.9", half="1"),
                                   event("Save", 65_000, confidence="0.5", half="1")]}
    write_tree(tmp_path / "labels", {"lg/g": labels}, "Labels-v2.json")
    write_tree(tmp_path / "pred", {"lg/g": predictions}, "results_spotting.json")
    code, out, err = run(capsys, "eval", "soccernet", tmp_path / "labels", tmp_path / "pred")
    assert code == 0, err
    assert err.splitlines() == [
        "uglspot eval soccernet: ignored 2 label classes not among the 17 SoccerNet-v2 classes the average is over: "
        "'Dive' (2 events), 'Timeout' (1 event)",
        "uglspot eval soccernet: ignored 1 predicted class not among the 17 SoccerNet-v2 classes the average is "
        "over: 'Save' (1 prediction)"]
    rows = [line.split("  ")[0].strip() for line in out.splitlines()[2:-1]]
    assert rows == list(SOCCERNET_V2_CLASSES)  # the classes averaged, each on its row


def test_convert_leaves_out_halves_with_no_events_and_no_length(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    first_half_only = {"annotations": [{"gameTime": "1 - 01:00", "label": "Goal", "position": "60000",
                                        "team": "home", "visibility": "visible"}]}
    write_tree(tmp_path / "labels", {"lg/a": first_half_only, "lg/b": first_half_only}, "Labels-v2.json")
    out = tmp_path / "e2e.json"
    code, _, err = run(capsys, "convert", "soccernet-to-e2e", tmp_path / "labels", out, "--fps", "2")
    assert code == 0
    assert err.splitlines() == [f"wrote 2 halves, 2 events to {out}",
                                "left out 2 halves with no events and no length (first 'lg/a/2'); "
                                "pass --half-duration SECONDS or --reference REF.json to write them"]
    assert [(v["video"], v["num_frames"]) for v in json.loads(out.read_text())] == [("lg/a/1", 121), ("lg/b/1", 121)]
    kept = tmp_path / "kept.json"
    code, _, err = run(capsys, "convert", "soccernet-to-e2e", tmp_path / "labels", kept, "--fps", "2",
                       "--half-duration", "2700")
    assert code == 0 and "left out" not in err and len(json.loads(kept.read_text())) == 4
