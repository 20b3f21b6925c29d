"""The same bad inputs for every command, from one table: an input that does
not exist, an input file of garbage bytes, and an output that cannot be
written (a file where a folder goes, or a folder where a file goes). Each
ends in one line on stderr naming the path, exit code 1, no traceback, and
the file that was in the way keeps its bytes.

Every command the CLI registers must have a row, with a reason where a case
does not apply: a new command fails ``test_every_command_has_a_row`` until
it gets the same cases. tests/test_bad_inputs.py holds the cases particular
to one command (odd settings, damaged run files)."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("uglspot.model.spotter")

from uglspot.cli import build_parser, main  # noqa: E402

pytestmark = pytest.mark.slow

GARBAGE = b"\xff\xfe\x00\x81garbage\x00\xc3(" * 64
KEEP = b"the user's file\n"


@dataclass
class Inputs:
    """Valid inputs (the bad-input tests' tiny dataset and trained run), and
    where each case puts its bad path."""

    tmp: Path
    dataset: object
    run: Path

    @property
    def video(self) -> str:
        return str(self.dataset.videos / f"{self.dataset.splits['test'][0].video}.mp4")

    @property
    def labels(self) -> str:
        return str(self.dataset.labels / "test.json")

    @property
    def config(self) -> str:
        from _engine_helpers import tiny_config

        from uglspot.config import dump_yaml

        path = self.tmp / "config.yaml"
        if not path.is_file():
            path.write_text(dump_yaml(tiny_config(self.dataset, self.tmp / "new-run", epochs=1)))
        return str(path)

    @property
    def predictions(self) -> str:
        """E2E-Spot predictions of SoccerNet halves (also what convert reads)."""
        path = self.tmp / "pred.json"
        path.write_text(json.dumps([{"video": "league/game/1", "num_frames": 100, "fps": 2.0,
                                     "events": [{"frame": 10, "label": "Goal", "score": 0.9}]}]))
        return str(path)

    @property
    def halves(self) -> str:
        """E2E-Spot labels of SoccerNet halves."""
        path = self.tmp / "halves.json"
        path.write_text(json.dumps([{"video": "league/game/1", "num_frames": 100, "fps": 2.0,
                                     "events": [{"frame": 10, "label": "Goal"}]}]))
        return str(path)

    @property
    def soccernet(self) -> str:
        """A SoccerNet labels folder with one game."""
        game = self.tmp / "sn" / "league" / "game"
        game.mkdir(parents=True, exist_ok=True)
        (game / "Labels-v2.json").write_text(json.dumps({"annotations": [
            {"gameTime": "1 - 00:05", "label": "Goal", "position": "5000", "team": "home", "visibility": "visible"}]}))
        return str(self.tmp / "sn")

    @property
    def events(self) -> str:
        path = self.tmp / "events.json"
        path.write_text(json.dumps({"video": "v", "fps": 8.0, "num_frames": 40,
                                    "events": [{"frame": 5, "label": "A", "score": 0.5}]}))
        return str(path)

    @property
    def spotted(self) -> str:
        """An output folder of spot with one video."""
        path = self.tmp / "spotted" / "v" / "events.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Path(self.events).read_text())
        return str(path.parents[1])

    @property
    def missing(self) -> str:
        return str(self.tmp / "missing-input")

    def garbage(self, name: str) -> str:
        path = self.tmp / "garbage" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(GARBAGE)
        return str(path)

    def garbage_in(self, relative: str) -> str:
        """A folder whose file at ``relative`` is garbage."""
        self.garbage(relative)
        return str(self.tmp / "garbage")

    def out(self) -> str:
        return str(self.tmp / "new-out")

    def file_in_the_way(self) -> str:
        path = self.tmp / "in-the-way"
        path.write_bytes(KEEP)
        return str(path)

    def folder_in_the_way(self) -> str:
        path = self.tmp / "in-the-way"
        path.mkdir()
        (path / "mine.txt").write_bytes(KEEP)
        return str(path)


Build = Callable[[Inputs], list[str]]
# command -> case -> argv builder, or the reason the case does not apply
ROWS: dict[str, dict[str, Build | str]] = {
    "demo": {"missing": "reads no input: it renders its own", "garbage": "reads no input: it renders its own",
             "unwritable": lambda i: ["demo", "--quick", "--out", i.file_in_the_way()]},
    "eval frames": {"missing": lambda i: ["eval", "frames", i.missing, i.predictions],
                    "garbage": lambda i: ["eval", "frames", i.garbage("test.json"), i.predictions],
                    "unwritable": "prints its table, writes nothing"},
    "eval soccernet": {"missing": lambda i: ["eval", "soccernet", i.missing, i.soccernet],
                       "garbage": lambda i: ["eval", "soccernet", i.soccernet,
                                             i.garbage_in("league/game/results_spotting.json")],
                       "unwritable": "prints its table, writes nothing"},
    "frames": {"missing": lambda i: ["frames", i.missing + ".mp4", "--out", i.out()],
               "garbage": lambda i: ["frames", i.garbage("clip.mp4"), "--out", i.out()],
               "unwritable": lambda i: ["frames", i.video, "--out", i.file_in_the_way()]},
    "detect": {"missing": lambda i: ["detect", i.missing + ".mp4", "--out", i.out(), "--fps", "8"],
               "garbage": lambda i: ["detect", i.garbage("features.pt"), "--out", i.out(), "--fps", "8",
                                     "--detector", "glip-import"],
               "unwritable": lambda i: ["detect", i.video, "--out", i.file_in_the_way(), "--fps", "8"]},
    "train": {"missing": lambda i: ["train", i.missing + ".yaml"],
              "garbage": lambda i: ["train", i.garbage("config.yaml")],
              "unwritable": lambda i: ["train", i.config, "--out", i.file_in_the_way()]},
    "spot": {"missing": lambda i: ["spot", i.missing + ".mp4", "--model", str(i.run), "--out", i.out()],
             "garbage": lambda i: ["spot", i.garbage("clip.mp4"), "--model", str(i.run), "--out", i.out(),
                                   "--entities", str(i.dataset.entities)],
             "unwritable": lambda i: ["spot", i.video, "--model", str(i.run), "--entities", str(i.dataset.entities),
                                      "--out", i.file_in_the_way()]},
    "stats": {"missing": lambda i: ["stats", i.missing + ".json"],
              "garbage": lambda i: ["stats", i.garbage("test.json")],
              "unwritable": lambda i: ["stats", i.labels, "--plot", i.folder_in_the_way()]},
    "clips": {"missing": lambda i: ["clips", i.missing, "--video", i.video, "--out", i.out()],
              "garbage": lambda i: ["clips", i.garbage("events.json"), "--video", i.video, "--out", i.out()],
              "unwritable": lambda i: ["clips", i.events, "--video", i.video, "--out", i.file_in_the_way()]},
    "predict": {"missing": lambda i: ["predict", i.missing + ".yaml"],
                "garbage": lambda i: ["predict", i.garbage("config.yaml")],
                "unwritable": lambda i: ["predict", i.config, "--model", str(i.run), "--out", i.file_in_the_way()]},
    "convert soccernet-to-e2e": {
        "missing": lambda i: ["convert", "soccernet-to-e2e", i.missing, i.out() + ".json"],
        "garbage": lambda i: ["convert", "soccernet-to-e2e", i.garbage_in("league/game/Labels-v2.json"),
                              i.out() + ".json", "--fps", "2"],
        "unwritable": lambda i: ["convert", "soccernet-to-e2e", i.soccernet, i.folder_in_the_way(), "--fps", "2"]},
    "convert e2e-to-soccernet": {
        "missing": lambda i: ["convert", "e2e-to-soccernet", i.missing + ".json", i.out()],
        "garbage": lambda i: ["convert", "e2e-to-soccernet", i.garbage("labels.json"), i.out()],
        "unwritable": lambda i: ["convert", "e2e-to-soccernet", i.halves, i.file_in_the_way()]},
    "convert predictions-to-soccernet": {
        "missing": lambda i: ["convert", "predictions-to-soccernet", i.missing + ".json", i.out(), "--fps", "2"],
        "garbage": lambda i: ["convert", "predictions-to-soccernet", i.garbage("pred.json"), i.out(), "--fps", "2"],
        "unwritable": lambda i: ["convert", "predictions-to-soccernet", i.predictions, i.file_in_the_way(),
                                 "--fps", "2"]},
    "import-e2e-spot": {"missing": lambda i: ["import-e2e-spot", i.missing + ".pt", "--out", i.out()],
                        "garbage": lambda i: ["import-e2e-spot", i.garbage("checkpoint_100.pt"), "--out", i.out()],
                        "unwritable": "a checkpoint of E2E-Spot's layout is needed first: "
                                      "tests/test_model_e2e_import.py refuses an existing --out"},
    "export": {"missing": lambda i: ["export", i.missing],
               "garbage": lambda i: ["export", i.garbage_in("model.safetensors")],
               "unwritable": lambda i: ["export", str(i.run), "--out", i.folder_in_the_way()]},
    "import-ugl": {"missing": lambda i: ["import-ugl", i.missing + ".pt", "--out", i.out()],
                   "garbage": lambda i: ["import-ugl", i.garbage("checkpoint_100.pt"), "--out", i.out()],
                   "unwritable": "a checkpoint of the release's layout is needed first: "
                                 "tests/test_model_ugl_release.py refuses an existing --out"},
    "report": {"missing": lambda i: ["report", i.missing],
               "garbage": lambda i: ["report", i.garbage_in("v/events.json")],
               "unwritable": lambda i: ["report", i.spotted, "--out", i.folder_in_the_way()]},
    "synth": {"missing": "reads no input: it renders its own", "garbage": "reads no input: it renders its own",
              "unwritable": lambda i: ["synth", "--out", i.file_in_the_way(), "--matches", "3", "--minutes", "0.1"]},
}
CASES = ("missing", "garbage", "unwritable")


def registered_commands() -> list[str]:
    """Every leaf command of the CLI: 'spot', 'eval frames', ..."""
    names = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            names.append(prefix)
            return
        for name, sub in actions[0].choices.items():
            walk(sub, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return names


def test_every_command_has_a_row() -> None:
    assert sorted(ROWS) == sorted(registered_commands())
    assert all(set(row) == set(CASES) for row in ROWS.values())


TABLE = [(command, case) for command, row in ROWS.items() for case in CASES if callable(row[case])]


@pytest.mark.parametrize("command, case", TABLE, ids=[f"{c}: {k}" for c, k in TABLE])
def test_the_same_bad_inputs_for_every_command(command, case, faults_dataset, faults_run, tmp_path,
                                               capsys) -> None:
    inputs = Inputs(tmp_path, faults_dataset, faults_run[0])
    argv = ROWS[command][case](inputs)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("uglspot ")]
    progress = [line for line in err.splitlines() if line.strip() and not line.startswith("uglspot ")]
    assert code == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    # the rest is progress and notes, as on success
    assert all(re.search(r"\(\d+%\)", line) or line.startswith("note: ") for line in progress), err
    named = {"missing": "missing-input", "garbage": "garbage", "unwritable": "in-the-way"}[case]
    assert named in lines[0], lines[0]
    way = tmp_path / "in-the-way"
    if way.is_file():
        assert way.read_bytes() == KEEP
    elif way.is_dir():
        assert sorted(p.name for p in way.iterdir()) == ["mine.txt"] and (way / "mine.txt").read_bytes() == KEEP


def test_the_table_counts() -> None:
    """The table's size, as the closing note quotes it."""
    applicable = len(TABLE)
    reasons = sum(not callable(row[case]) for row in ROWS.values() for case in CASES)
    assert applicable + reasons == len(ROWS) * len(CASES) and applicable >= 40
