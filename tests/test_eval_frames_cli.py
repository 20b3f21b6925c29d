from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from uglspot.cli import main
from uglspot.data.labels import read_class_list, read_e2e_labels, read_predictions
from uglspot.metrics.spotting import frame_map
from uglspot.post.nms import nms_predictions

GT = [
    {"video": "v1", "num_frames": 40, "fps": 25, "events": [{"frame": 10, "label": "a"}, {"frame": 20, "label": "a"}]},
    {"video": "v2", "num_frames": 30, "fps": 25, "events": [{"frame": 0, "label": "b"}, {"frame": 29, "label": "b"}]},
]
PRED = [
    {"video": "v1", "events": [{"frame": 10, "label": "a", "score": .9}, {"frame": 30, "label": "a", "score": .8},
                               {"frame": 21, "label": "a", "score": .7}]},
    {"video": "v2", "events": [{"frame": 29, "label": "b", "score": .6}, {"frame": 28, "label": "b", "score": .5}]},
]


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "class.txt").write_text("a\nb\nc\n")
    return write(tmp_path / "test.json", GT), write(tmp_path / "pred.json", PRED)


def run(capsys: pytest.CaptureFixture, *argv: str | Path) -> tuple[int, str, str]:
    code = main(["eval", "frames", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_in_percent(files: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    code, out, err = run(capsys, gt, pred, "--tolerances", "0,1")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]
            if not line.startswith(("-", "mean"))}
    # a: δ=0 only 10 hits (1/2 = 50 %); δ=1: 21 takes 20 at rank 3 -> (1 + 2/3)/2 = 83.33 %.
    # b: 29 hits at rank 1; 28 then finds 29 taken and 0 28 frames away, a miss: 50 % at both.
    assert rows["a"] == ["50.00", "83.33"]
    assert rows["b"] == ["50.00", "50.00"]
    assert rows["c"] == ["-", "-"]  # no ground truth: not in the mean
    assert rows["mAP"] == ["50.00", "66.67"]
    assert "mean mAP over" not in out  # needs δ = 1, 2 and 4
    code, out, _ = run(capsys, gt, pred)
    mean = (frame_map(read_e2e_labels(gt), read_predictions(pred), ["a", "b", "c"]).selection_map)
    assert f"mean mAP over δ in {{1, 2, 4}} (model selection): {100 * mean:.2f}" in out


def test_json_is_one_object_equal_to_the_library(files: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    code, out, _ = run(capsys, gt, pred, "--json", "--tolerances", "2,0")
    assert code == 0
    data = json.loads(out)  # exactly one JSON document on stdout
    expected = frame_map(read_e2e_labels(gt), read_predictions(pred), ["a", "b", "c"], (2, 0)).to_json()
    assert data == expected
    assert data["tolerances"] == [2, 0] and data["per_class"]["0"]["c"] is None


def test_nms_is_applied_before_scoring(files: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    code, out, _ = run(capsys, gt, pred, "--json", "--nms", "1")
    assert code == 0
    thinned = nms_predictions(read_predictions(pred), 1)  # drops b@28 (.5 < .6 one frame away)
    assert sum(len(p.events) for p in thinned) == 4
    expected = frame_map(read_e2e_labels(gt), thinned, ["a", "b", "c"]).to_json()
    assert json.loads(out) == expected
    assert json.loads(out)["per_class"]["0"]["b"] == pytest.approx(.5)


def test_explicit_class_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt, pred = write(tmp_path / "gt.json", GT), write(tmp_path / "p.json", PRED)
    code, _, err = run(capsys, gt, pred)
    assert code == 1 and "no class.txt beside it" in err
    classes = tmp_path / "elsewhere" / "names.txt"
    classes.parent.mkdir()
    classes.write_text("b\na\n")
    code, out, _ = run(capsys, gt, pred, "--classes", classes, "--json")
    assert code == 0 and list(json.loads(out)["per_class"]["0"]) == ["b", "a"]


def _gt_with(**changes: object) -> list:
    data = json.loads(json.dumps(GT))
    for key, value in changes.items():
        video, field = key.split("__")
        data[int(video[1:]) - 1][field] = value
    return data


BAD_INPUTS = [
    pytest.param("gt", '[{"video": "v1",\n  "num_frames": 40,,}]', r"test\.json:2:20: malformed JSON", id="gt-malformed"),
    pytest.param("pred", '[\n{"video": "v1" "events": []}]', r"pred\.json:2:16: malformed JSON", id="pred-malformed"),
    pytest.param("gt", _gt_with(v2__events=[{"frame": 3, "label": "a"}, {"frame": 4, "label": "dive"}]),
                 r"test\.json: video 'v2', event #1: label 'dive' is not in class.txt", id="gt-unknown-label"),
    pytest.param("pred", [{"video": "v1", "events": [{"frame": 1, "label": "zz", "score": 1}]}],
                 r"pred\.json: video 'v1', event #0: label 'zz' is not in class.txt", id="pred-unknown-label"),
    pytest.param("gt", _gt_with(v1__events=[{"frame": 40, "label": "a"}]),
                 r"test\.json: video 'v1', event #0: frame 40 is outside \[0, 40\)", id="gt-frame-past-end"),
    pytest.param("gt", _gt_with(v1__events=[{"frame": -2, "label": "a"}]),
                 r"video 'v1', event #0: frame -2 is outside", id="gt-negative-frame"),
    pytest.param("pred", [{"video": "v2", "events": [{"frame": 1, "label": "b", "score": 1},
                                                     {"frame": 30, "label": "b", "score": 1}]}],
                 r"pred\.json: video 'v2', event #1: frame 30 is outside \[0, 30\)", id="pred-frame-past-end"),
    pytest.param("pred", [{"video": "v2", "events": [{"frame": -1, "label": "b", "score": 1}]}],
                 r"pred\.json: video 'v2', event #0: frame -1 is outside", id="pred-negative-frame"),
    pytest.param("gt", GT + [GT[0]], r"test\.json: video 'v1': duplicate video id", id="gt-duplicate-video"),
    pytest.param("pred", PRED + [PRED[1]], r"pred\.json: video 'v2': duplicate video id", id="pred-duplicate-video"),
    pytest.param("pred", [{"video": "v9", "events": []}],
                 r"pred\.json: video 'v9' has predictions but is not in the ground truth", id="pred-unknown-video"),
    pytest.param("pred", '[{"video": "v1", "events": [{"frame": 1, "label": "a", "score": NaN}]}]',
                 r"pred\.json: video 'v1', event #0: score nan is not a finite number", id="pred-nan-score"),
    pytest.param("pred", [{"video": "v1", "events": [{"frame": 1, "label": "a"}]}],
                 r"pred\.json: video 'v1', event #0: missing key 'score'", id="pred-missing-score"),
    pytest.param("gt", _gt_with(v1__events=[], v2__events=[]),
                 r"test\.json: no ground-truth events", id="gt-without-events"),
]


@pytest.mark.parametrize("which, content, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_1(files: tuple[Path, Path], capsys: pytest.CaptureFixture,
                                      which: str, content: object, message: str) -> None:
    gt, pred = files
    write(gt if which == "gt" else pred, content)
    code, out, err = run(capsys, gt, pred)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("uglspot eval: error: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("option, value, message", [
    ("--tolerances", "0,x", r"--tolerances '0,x': 'x' is not a non-negative whole number"),
    ("--tolerances", "1,-2", r"'-2' is not a non-negative"),
    ("--tolerances", "1,1", "a value is repeated"),
    ("--tolerances", "", r"'' is not a non-negative"),
    ("--tolerances", "1.5", r"'1.5' is not"),
    ("--tolerances", "²", r"'²' is not"),
    ("--nms", "-1", r"--nms '-1': the window must be a non-negative whole number"),
    ("--nms", "one", r"--nms 'one'"),
])
def test_bad_options_are_one_line_exit_1(files: tuple[Path, Path], capsys: pytest.CaptureFixture,
                                         option: str, value: str, message: str) -> None:
    gt, pred = files
    code, _, err = run(capsys, gt, pred, f"{option}={value}")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_events_past_end_need_the_flag(files: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    write(gt, _gt_with(v1__events=[{"frame": 10, "label": "a"}, {"frame": 41, "label": "a"}]))
    write(pred, [{"video": "v1", "events": [{"frame": 41, "label": "a", "score": .9}]}])
    code, _, err = run(capsys, gt, pred)
    assert code == 1 and "--allow-events-past-end" in err
    code, out, _ = run(capsys, gt, pred, "--allow-events-past-end", "--json")
    assert code == 0 and json.loads(out)["per_class"]["0"]["a"] == pytest.approx(.5)


def test_missing_file_is_reported(files: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    code, _, err = run(capsys, gt, pred.with_name("absent.json"))
    assert code == 1 and "absent.json: JSON file not found" in err


def test_help_exits_zero(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "frames", "--help"])
    assert exit_info.value.code == 0
    assert "--tolerances" in capsys.readouterr().out


def test_perfect_predictions_on_real_finediving_labels(shared_labels: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    gt = shared_labels / "finediving" / "test.json"
    truth = read_e2e_labels(gt, read_class_list(shared_labels / "finediving" / "class.txt"))
    pred = write(tmp_path / "pred.json", [
        {"video": v.video, "events": [{"frame": e.frame, "label": e.label, "score": 1.0} for e in v.events]}
        for v in truth])
    code, out, _ = run(capsys, gt, pred, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mAP"] == {"0": 1.0, "1": 1.0, "2": 1.0, "4": 1.0}
    assert set(data["per_class"]["0"]) == {"Entry", "Som(s).Pike", "Som(s).Tuck", "Twist(s)"}


def spot_folder(root: Path) -> Path:
    """PRED as `uglspot spot` writes it: one folder per video with its events.json (time and entities
    beside frame, label and score), predictions.json and an entity store folder beside them."""
    for record in PRED:
        events = [{**e, "time": e["frame"] / 25, "entities": []} for e in record["events"]]
        write_folder = root / f"{record['video']}_out"
        write_folder.mkdir(parents=True)
        write(write_folder / "events.json", {"video": record["video"], "num_frames": 40, "fps": 25.0,
                                             "events": events})
    (root / "entities").mkdir()
    write(root / "predictions.json", PRED[:1])  # a later run of one video: the events.json files hold both
    return root


def test_spot_output_folder_and_its_events_files_score_as_its_predictions(
        files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    expected = run(capsys, gt, pred, "--json")[1]
    spotted = spot_folder(tmp_path / "spotted")
    code, out, err = run(capsys, gt, spotted, "--json")
    assert (code, err, out) == (0, "", expected)
    events = sorted(spotted.rglob("events.json"))
    assert run(capsys, gt, *events, "--json")[1] == expected
    # predict's folder holds only predictions.json
    predicted = tmp_path / "predicted"
    predicted.mkdir()
    write(predicted / "predictions.json", PRED)
    assert run(capsys, gt, predicted, "--json")[1] == expected


def test_predictions_given_twice_or_a_folder_without_any_are_one_line(
        files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt, pred = files
    spotted = spot_folder(tmp_path / "spotted")
    code, _, err = run(capsys, gt, spotted, pred)
    assert code == 1 and err == (f"uglspot eval: error: {pred}: video 'v1' is also in "
                                 f"{spotted / 'v1_out' / 'events.json'}; give each video's predictions once\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, gt, empty)
    assert code == 1 and err.startswith(f"uglspot eval: error: {empty}: no events.json below it")
    write(spotted / "v2_out" / "events.json", {"video": "v9", "events": []})
    code, _, err = run(capsys, gt, spotted)
    assert code == 1 and f"{spotted / 'v2_out' / 'events.json'}: video 'v9' has predictions but is not" in err


@pytest.mark.parametrize("text, expected", [
    ("0,1,2,4", (0, 1, 2, 4)), ("2, 0", (2, 0)), ("7", (7,)),
    ("1,1", "a value is repeated in [1, 1]"), ("0,x", "'x' is not a non-negative whole number"),
    ("", "'' is not"), ("1,-1", "'-1' is not"), ("0,,1", "'' is not"),
])
def test_one_reader_of_frame_tolerances_for_eval_report_and_the_metric(tmp_path, capsys, text, expected) -> None:
    """`eval frames --tolerances`, `report --tolerances` and the metric's own
    check accept and refuse the same lists (three parsers once, one of them
    accepting repeats)."""
    from uglspot.metrics.spotting import check_tolerances, parse_tolerances

    if isinstance(expected, tuple):
        assert parse_tolerances(text) == expected == check_tolerances(expected)
        return
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_tolerances(text)
    for argv in (["eval", "frames", str(tmp_path / "gt.json"), str(tmp_path / "p.json")],
                 ["report", str(tmp_path)]):
        try:
            code = main(argv + ["--tolerances", text])
        except SystemExit as exc:  # argparse's refusal of an option (report), exit 2
            code = exc.code
        assert code in (1, 2) and expected in capsys.readouterr().err
