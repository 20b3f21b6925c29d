"""Messages that fit the command line (issue 12).

Every suggestion in an error is a command or option that exists: each
``uglspot ...`` command line quoted in a message goes through the real
argparse parser (as the docs test does for the docs), and each option named
outside such a quote belongs to the command that printed it, with a value
among its choices. A message names its input once and is never cut in the
middle of a word. The messages come from every bad-input case of
``test_bad_inputs`` and from the cases of the issue's "Why" list below;
every string literal of the source that quotes an ``uglspot`` command is
checked too, triggered or not.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import re
import shlex
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from uglspot.cli import build_parser, main, parse

SRC = Path(__file__).resolve().parents[1] / "src" / "uglspot"
REPO = SRC.parents[1]
PARSER = build_parser()


# --- the checks ------------------------------------------------------------------------------------


def command_parser(tokens: list[str]) -> tuple[Any, list[str], str]:
    """(sub-parser, remaining tokens, command name) of ``uglspot TOKENS``; parser None if no such command."""
    import argparse

    parser, rest, name = PARSER, list(tokens), []
    while True:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or not rest:
            return parser, rest, " ".join(name)
        if rest[0] not in subparsers[0].choices:
            return (None if parser is PARSER else parser), rest, " ".join(name)
        name.append(rest[0])
        parser, rest = subparsers[0].choices[rest[0]], rest[1:]


def placeholder(token: str) -> bool:
    """A metavar-like stand-in (NAME, STORE_DIR, N, DATA/entities), not a literal value."""
    return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*(/.*)?|\{.*\}|\.\.\.|X", token))


def config_key_exists(key: str) -> bool:
    """Whether ``a.b.c`` names a field of the training configuration (``model.options.*`` is free-form)."""
    from uglspot.engine.config import RunConfig

    kind: Any = RunConfig
    for part in key.split("."):
        if not is_dataclass(kind):
            return kind is dict or getattr(kind, "__origin__", None) is dict
        hints = get_type_hints(kind)
        if part not in {f.name for f in fields(kind)}:
            return False
        kind = hints[part]
        kind = next((a for a in getattr(kind, "__args__", ()) if is_dataclass(a)), kind)
    return True


def option_problems(parser: Any, tokens: list[str], where: str) -> list[str]:
    """Options in ``tokens`` that ``parser`` lacks, values outside an option's choices, unknown --set keys."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    problems = []
    for i, token in enumerate(tokens):
        if not token.startswith("--"):
            continue
        name, _, inline = token.partition("=")
        value = inline or (tokens[i + 1] if i + 1 < len(tokens) else "")
        value = value.rstrip(".,;:)")
        action = actions.get(name)
        if action is None:
            problems.append(f"{where}: {name} is not an option of `uglspot {parser.prog.split(' ', 1)[-1]}`")
        elif action.choices and value and not placeholder(value) and value not in action.choices:
            problems.append(f"{where}: {name} {value} is not one of its choices {list(action.choices)}")
        elif name == "--set" and "=" in value and not placeholder(value.split("=")[0]):
            if not config_key_exists(value.split("=", 1)[0]):
                problems.append(f"{where}: --set {value}: no such configuration key")
    return problems


def quoted_commands(message: str) -> list[str]:
    return re.findall(r"`uglspot ([^`]*)`", message)


def command_problems(snippet: str, whole: bool = True) -> list[str]:
    """A quoted ``uglspot`` command line: the command exists, its options are
    its own, and (``whole``, unless it is a synopsis with ``...``) the real
    parser takes it, short at most of required arguments the message leaves
    to the user."""
    tokens = shlex.split(snippet)
    parser, rest, _ = command_parser(tokens)
    if parser is None or (parser is PARSER and not all(t.startswith("-") for t in rest)):
        return [f"`uglspot {snippet}`: no such command"]
    problems = option_problems(parser, rest, f"`uglspot {snippet}`")
    if whole and "..." not in snippet and not problems:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                parse(build_parser(), tokens)
            except SystemExit:
                if "the following arguments are required" not in err.getvalue():
                    problems.append(f"`uglspot {snippet}` does not parse: {err.getvalue().strip()}")
    return problems


def message_problems(argv: list[str], message: str) -> list[str]:
    """Everything wrong with ``message``, printed by ``uglspot ARGV``."""
    problems = []
    for snippet in quoted_commands(message):
        problems += command_problems(snippet)
    outside = re.sub(r"`[^`]*`", "``", message)
    parser, _, _ = command_parser(argv)
    for match in re.finditer(r"(?<![\w./-])(--[a-z][a-z0-9-]*)(?:[ =]([^\s,;)]+))?", outside):
        problems += option_problems(parser, [t for t in match.groups() if t], repr(match.group(0)))
    for repeated in re.finditer(r"(?<![\w/.-])([\w./-]*[/.][\w./-]*): \1(?=[:\s])", outside):
        problems.append(f"{repeated.group(1)!r} named twice in a row")
    bracketed = re.sub(r"\[[^\[\]()]*\)", "", message)  # intervals such as [0, 40) are not brackets
    if bracketed.count("(") != bracketed.count(")") or message.count("`") % 2:
        problems.append("unbalanced brackets or quotes: cut short?")
    return problems


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse refusing an option
        code = int(exit_info.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- the checks check ------------------------------------------------------------------------------


@pytest.mark.parametrize("message, fault", [
    ("x: pass --detector synthetic", "not one of its choices"),
    ("x: run `uglspot detect V --fps 2 --out s --bogus`", "not an option"),
    ("x: run `uglspot detector V`", "no such command"),
    ("x: set --set data.no_such_key=1", "no such configuration key"),
    ("x: a/empty.json: a/empty.json:1:1: malformed JSON", "named twice"),
    ("x: cannot load (OSError: Make sure the reposit", "cut short"),
])
def test_the_checks_catch_what_they_are_for(message: str, fault: str) -> None:
    problems = message_problems(["train" if "--set" in message else "spot"], message)
    assert any(fault in p for p in problems), problems


def test_the_checks_pass_good_suggestions() -> None:
    good = ("x: pass --entities STORE_DIR (from `uglspot detect`) or --detector grounding-dino; "
            "or `uglspot detect a.mp4 --fps 2 --out stores`, `uglspot train --set data.allow_events_past_end=true`")
    assert message_problems(["spot"], good) == []


def source_messages() -> list[tuple[str, str]]:
    """(file:line, text) of every string in the source that quotes an
    ``uglspot`` command line, f-string fields replaced by X (docstrings aside)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if "`uglspot " in text:
                found.append((f"{path.relative_to(SRC)}:{node.lineno}", text.replace("{{", "{").replace("}}", "}")))
    return found


SOURCE_MESSAGES = source_messages()


def test_the_source_quotes_commands() -> None:
    assert len(SOURCE_MESSAGES) >= 10


@pytest.mark.parametrize("where, text", SOURCE_MESSAGES, ids=[w for w, _ in SOURCE_MESSAGES])
def test_every_command_quoted_in_the_source_exists(where: str, text: str) -> None:
    """Values are unknown here (f-string fields), so the command and its options are checked."""
    problems = [p for snippet in quoted_commands(text) for p in command_problems(snippet, whole=False)]
    assert not problems, (where, problems)


def test_no_message_is_cut_by_a_character_count() -> None:
    """Quoted exception text goes through ``errors.brief`` (sentence or word
    boundary), never a slice such as ``str(exc)[:200]`` that cuts a word."""
    sliced = [f"{path.relative_to(SRC)}:{n}" for path in sorted(SRC.rglob("*.py"))
              for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"(exc|err|error)\)?(\.strip\(\))?(\.splitlines\(\)\[-?\d\])?\[:\d+\]", line)]
    assert not sliced


@pytest.mark.parametrize("text, limit", [
    ("Error no file named preprocessor_config.json found in directory /tmp/x. Make sure the repository "
     "holds the files, or pass another path. Checkout https://huggingface.co for available files.", 120),
    ("one-very-long-word" * 20, 50),
    ("short enough", 200),
])
def test_brief_keeps_whole_words(text: str, limit: int) -> None:
    from uglspot.errors import brief

    short = brief(text, limit)
    assert len(short) <= limit and text.startswith(short.rstrip("…"))
    words = text.split()
    assert short == text or short.endswith((".", "…"))
    if short.endswith("."):
        assert short.split()[-1] in words  # a whole word, ending its sentence


# --- every triggered message ----------------------------------------------------------------------


def bad_input_cases() -> list:
    from test_bad_inputs import CASES

    return CASES


@pytest.mark.slow
@pytest.mark.parametrize("case", bad_input_cases(), ids=[case[0] for case in bad_input_cases()])
def test_bad_input_messages_suggest_what_exists(case, faults_dataset, faults_run, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    from test_bad_inputs import Context

    _, argv, code, _ = case
    arguments = argv(Context(tmp_path, faults_dataset, faults_run[0]))
    got, _, err = run_cli(arguments, capsys)
    assert got == code and err.strip(), err
    assert not message_problems(arguments, err), (err, message_problems(arguments, err))


# --- the "Why" list, one test each --------------------------------------------------------


def synth(out: Path, capsys: pytest.CaptureFixture) -> Path:
    code, _, err = run_cli(["synth", "--out", str(out), "--matches", "3", "--minutes", "0.1", "--width", "64",
                            "--height", "36", "--workers", "1"], capsys)
    assert code == 0, err
    return out


def test_stats_reads_what_synth_and_demo_write(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = synth(tmp_path / "data", capsys)
    assert (data / "dataset.json").is_file()  # synth's manifest, a JSON object beside the splits
    code, out, err = run_cli(["stats", str(data)], capsys)
    assert code == 0 and not err, err
    assert "all 3 splits: 3 videos" in out and "skipped: dataset.json" in out
    code, out, _ = run_cli(["stats", str(data), "--json"], capsys)
    assert code == 0 and sorted(json.loads(out)["splits"]) == ["test", "train", "val"]
    # a demo folder: the dataset one level down, next to runs, predictions and summary.json
    demo = tmp_path / "demo"
    demo.mkdir()
    data.rename(demo / "dataset")
    (demo / "summary.json").write_text('{"profile": "quick"}')
    (demo / "runs" / "ugl_rny002").mkdir(parents=True)
    code, out, err = run_cli(["stats", str(demo), "--json"], capsys)
    assert code == 0 and not err, err
    data = json.loads(out)
    assert data["path"] == str(demo / "dataset") and data["all"]["videos"] == 3


def test_stats_still_reports_a_garbled_split_beside_the_manifest(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    data = synth(tmp_path / "data", capsys)
    (data / "extra.json").write_text("")
    code, out, err = run_cli(["stats", str(data)], capsys)
    assert code == 1 and "all 3 splits" in out and "extra.json:1:1: malformed JSON" in err


def test_a_failed_input_is_named_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "class.txt").write_text("a\n")
    for name in ("empty.json", "other.json"):
        (tmp_path / name).write_text("")
    code, _, err = run_cli(["stats", str(tmp_path)], capsys)
    assert code == 1 and "2 label files failed" in err
    for name in ("empty.json", "other.json"):
        path = str(tmp_path / name)
        assert err.count(path) == 1 and f"{path}:1:1: malformed JSON" in err, err
    assert not message_problems(["stats"], err)


def spot_context(tmp_path: Path, faults_dataset, faults_run, detector: str | None):
    """A copy of the trained tiny run whose training stores came from ``detector``."""
    from _engine_helpers import link_copy, rewrite

    from uglspot.engine.state import resolve

    run = link_copy(faults_run[0], tmp_path / "run")
    for name in ("best", "last"):
        path = resolve(run / "checkpoints", name) / "inference.json"
        settings = json.loads(path.read_text())
        settings["entities"] = None if detector is None else {**(settings["entities"] or {}), "detector": detector}
        rewrite(path, json.dumps(settings))
    return run


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["synthetic", "glip-import", "grounding-dino", None])
def test_spot_suggests_only_detectors_it_can_run(detector, faults_dataset, faults_run, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    run = spot_context(tmp_path, faults_dataset, faults_run, detector)
    video = faults_dataset.videos / f"{faults_dataset.splits['test'][0].video}.mp4"
    argv = ["spot", str(video), "--model", str(run), "--out", str(tmp_path / "out"), "--device", "cpu"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and "uses scene entities" in err and "--entities STORE_DIR" in err, err
    assert not message_problems(argv, err), message_problems(argv, err)
    if detector == "grounding-dino":
        assert "--detector grounding-dino" in err


@pytest.mark.slow
def test_spot_names_a_missing_video_as_missing(faults_dataset, faults_run, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    video = faults_dataset.videos / f"{faults_dataset.splits['test'][0].video}.mp4"
    missing = tmp_path / "no-such-video.mp4"
    base = ["--model", str(faults_run[0]), "--entities", str(faults_dataset.entities), "--device", "cpu"]
    code, _, err = run_cli(["spot", str(missing), *base, "--out", str(tmp_path / "a")], capsys)
    assert code == 1 and f"{missing}: no such file" in err and "entity store" not in err, err
    code, out, err = run_cli(["spot", str(video), str(missing), *base, "--out", str(tmp_path / "b")], capsys)
    assert code == 1 and f"{missing}: no such file" in err and "entity store" not in err, err
    assert "1 videos failed" in err and (tmp_path / "b" / "predictions.json").is_file()  # the good one is spotted


def test_docs_link_no_path_of_a_development_machine() -> None:
    texts = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    found = [f"{path.name}: {match.group(0)}" for path in texts
             for match in re.finditer(r"(?<![\w.~])/(?:work|home|Users|root|mnt)/[\w./-]*", path.read_text())]
    assert not found


def test_convert_names_the_flag_not_the_python_argument(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    game = tmp_path / "sn" / "league" / "2020" / "game"
    game.mkdir(parents=True)
    (game / "Labels-v2.json").write_text(json.dumps({"annotations": [
        {"gameTime": "1 - 00:20", "label": "Goal", "position": "20000", "team": "home", "visibility": "visible"}]}))
    argv = ["convert", "soccernet-to-e2e", str(tmp_path / "sn"), str(tmp_path / "out.json"), "--fps", "2",
            "--half-duration", "10"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0 and "1 events at or past num_frames" in err, err
    assert "allow_past_end" not in err and "--allow-events-past-end" in err
    assert not message_problems(argv, err), message_problems(argv, err)
    # and the label readers name the option of the command that read them
    truth = json.loads((tmp_path / "out.json").read_text())
    (tmp_path / "class.txt").write_text("Goal\n")
    (tmp_path / "pred.json").write_text(json.dumps([{"video": truth[0]["video"], "events": []}]))
    argv = ["eval", "frames", str(tmp_path / "out.json"), str(tmp_path / "pred.json")]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and "--allow-events-past-end" in err and not message_problems(argv, err), err


@pytest.mark.slow
def test_train_names_its_own_setting_for_events_past_the_end(faults_dataset, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    from _engine_helpers import tiny_config

    from uglspot.config import dump_yaml

    labels = tmp_path / "labels"
    labels.mkdir()
    for path in faults_dataset.labels.iterdir():
        (labels / path.name).write_text(path.read_text())
    train = json.loads((labels / "train.json").read_text())
    train[0]["events"].append({"frame": train[0]["num_frames"] + 3, "label": train[0]["events"][0]["label"]})
    (labels / "train.json").write_text(json.dumps(train))
    config = tmp_path / "config.yaml"
    config.write_text(dump_yaml(tiny_config(faults_dataset, tmp_path / "run", epochs=1)))
    argv = ["train", str(config), "--set", f"data.labels={labels}"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and "--set data.allow_events_past_end=true" in err, err
    assert not message_problems(argv, err), message_problems(argv, err)


@pytest.mark.slow
def test_a_damaged_checkpoint_gives_advice_that_can_be_followed(faults_dataset, faults_run, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from _engine_helpers import link_copy, rewrite

    from uglspot.engine.state import resolve

    run = link_copy(faults_run[0], tmp_path / "run")
    weights = resolve(run / "checkpoints", "best") / "model.safetensors"
    rewrite(weights, weights.read_bytes()[:1000])
    video = faults_dataset.videos / f"{faults_dataset.splits['test'][0].video}.mp4"
    argv = ["spot", str(video), "--model", str(run), "--entities", str(faults_dataset.entities),
            "--out", str(tmp_path / "out"), "--device", "cpu"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and str(weights) in err and "save the model" not in err, err
    assert "`uglspot train`" in err and not message_problems(argv, err)


@pytest.mark.parametrize("files, expected", [
    ({}, "not a complete model folder (no config.json and no processor_config.json and no weights"),
    ({"config.json": '{"model_type": "grounding-dino"}'}, "(no processor_config.json and no weights"),
    ({"config.json": '{"model_type": "grounding-dino"}', "processor_config.json": "{}", "model.safetensors": "junk"},
     "cannot load the detector model in this folder"),
])
def test_a_bogus_detector_folder_is_named_as_such(files: dict[str, str], expected: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("transformers")
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    argv = ["detect", str(video), "--model", str(folder), "--fps", "2", "--out", str(tmp_path / "stores")]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and expected in err, err
    assert f"download {folder}" not in err and "huggingface-cli" not in err, err
    assert "Make sure the reposit" not in err or "Make sure the repository" in err
    assert err.count(str(folder)) == 1 and not message_problems(argv, err), (err, message_problems(argv, err))


def test_metrics_and_steps_count_epochs_from_one(faults_run) -> None:
    run, progress = faults_run
    with open(run / "metrics.csv", newline="") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == list(range(1, progress.epoch + 1))
    with open(run / "steps.csv", newline="") as handle:
        assert {int(row["epoch"]) for row in csv.DictReader(handle)} == set(epochs)


@pytest.mark.slow
def test_resume_says_where_it_goes_on_and_bars_name_model_and_stage(faults_dataset, faults_run, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """stderr is not a terminal here (pytest captures it): progress comes as
    plain lines, with no carriage return or escape code."""
    from _engine_helpers import link_copy

    run = link_copy(faults_run[0], tmp_path / "run")
    steps = faults_run[1].step
    code, out, err = run_cli(["train", "--resume", str(run), "--set", "train.epochs=3"], capsys)
    assert code == 0, err
    assert f"resuming {run.resolve()} from step {steps}, epoch 3/3 (from its start)" in err, err
    assert re.search(r"^train ugl_rny002 epoch 3/3: 3/3 steps \(100%\), \d+ s, loss=", err, re.M), err
    for head in ("global head", "entity side"):  # the UGL recipe spots the validation videos once per head
        assert re.search(rf"^validate ugl_rny002 epoch 3/3, {head}: \d+/\d+ windows \(100%\)", err, re.M), err
    assert "\r" not in err and "\x1b" not in err and "\r" not in out
    assert "trained 3 epochs" in out
    code, _, err = run_cli(["train", "--resume", str(run)], capsys)
    assert code == 0 and "all 3 epochs are done" in err, err


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    import os

    from uglspot import progress

    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal:
        monkeypatch.setattr("sys.stderr", terminal)
        bar = progress.progress_bar("train ugl_rny002 epoch 1/2", 4, "step")
        assert not isinstance(bar, progress.LineProgress)
        bar.close()
    os.close(primary)
    monkeypatch.undo()
    lines = progress.LineProgress("spot e2e_rny002", 4, "window", seconds=0.0)
    with lines:
        for _ in range(2):
            lines.update(2)
        lines.set_postfix(loss="0.5")
    err = capsys.readouterr().err
    assert err.splitlines() == ["spot e2e_rny002: 2/4 windows (50%), 0 s",
                                "spot e2e_rny002: 4/4 windows (100%), 0 s",
                                "spot e2e_rny002: 4/4 windows (100%), 0 s, loss=0.5"]  # the end, with news
    with progress.LineProgress("report", 1, "part", seconds=0.0) as again:
        again.update(1)
    assert capsys.readouterr().err.splitlines() == ["report: 1/1 parts (100%), 0 s"]  # the end, not repeated
    quiet = progress.LineProgress("nothing", 3, seconds=0.0)
    quiet.close()
    assert capsys.readouterr().err == ""  # no work, no line


@pytest.mark.parametrize("argv, option", [
    (["convert", "soccernet-to-e2e", "sn", "out.json", "--fps", "nan"], "--fps"),
    (["convert", "soccernet-to-e2e", "sn", "out.json", "--fps", "inf"], "--fps"),
    (["convert", "soccernet-to-e2e", "sn", "out.json", "--fps", "2", "--half-duration", "1e300"], "--half-duration"),
    (["convert", "predictions-to-soccernet", "p.json", "out", "--fps", "nan"], "--fps"),
    (["frames", "v.mp4", "--out", "cache", "--fps", "1e12"], "--fps"),
    (["frames", "v.mp4", "--out", "cache", "--height", "100000"], "--height"),
    (["synth", "--out", "data", "--fps", "nan"], "--fps"),
    (["detect", "v.mp4", "--out", "stores", "--fps", "nan"], "--fps"),
])
def test_numbers_out_of_range_are_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, option) -> None:
    """Each once ended in an internal error, a NaN in a file, a 2e302-frame half or a full disk."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {option}" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("case", ["json onto a folder", "json under a file", "folders under a file"])
def test_an_output_path_of_the_wrong_kind_is_one_line(tmp_path, monkeypatch, capsys, case) -> None:
    """Each once ended in `internal error` (IsADirectoryError, FileExistsError, NotADirectoryError)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sn" / "g1").mkdir(parents=True)
    (tmp_path / "sn" / "g1" / "Labels-v2.json").write_text(json.dumps({"annotations": [
        {"gameTime": "1 - 00:10", "label": "Goal", "position": "10000", "team": "home", "visibility": "visible"}]}))
    (tmp_path / "labels.json").write_text(json.dumps([{"video": "g/1", "num_frames": 10, "fps": 2, "events": []}]))
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("kept")
    argv = {"json onto a folder": ["convert", "soccernet-to-e2e", "sn", "folder", "--fps", "2"],
            "json under a file": ["convert", "soccernet-to-e2e", "sn", "file/x.json", "--fps", "2"],
            "folders under a file": ["convert", "e2e-to-soccernet", "labels.json", "file"]}[case]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    assert ("is a folder" in err) if case == "json onto a folder" else ("is a file, not a folder" in err), err
    assert (tmp_path / "file").read_text() == "kept" and list((tmp_path / "folder").iterdir()) == []


def test_many_problems_read_as_one_line_with_a_count() -> None:
    from uglspot.errors import listed, problems_error

    assert listed(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert listed(["a", "b"], 5) == "a, b"
    assert str(problems_error("stores do not fit", ["only one"])) == "only one"
    assert str(problems_error("stores do not fit", ["p1", "p2", "p3", "p4"])) == "stores do not fit: p1; p2; p3 (and 1 more)"
    assert str(problems_error("x", ["p1", "p2"], shown=3)) == "x: p1; p2"
