"""Training that explains itself (issue 22): Ctrl-C names the command that
continues the run, and a schedule the config does not make plain (a warm-up
over the whole run, a resume that reshapes the schedule) is stated in one
line before the first step."""

from __future__ import annotations

from pathlib import Path

import pytest

from uglspot.cli import main
from uglspot.engine.schedule import schedule_notes, scheduled_lr

RECORD = {"train.epochs": 3, "optim.warmup_epochs": 3.0, "optim.warmup_start": 0.01, "optim.lr": 1e-3,
          "steps per epoch": 10}


def test_a_warm_up_over_the_whole_run_is_stated() -> None:
    [line] = schedule_notes(RECORD, 0)
    assert line.startswith("optim.warmup_epochs=3 covers all train.epochs=3: the learning rate only warms up")
    assert f"to {scheduled_lr(RECORD, 29):.2g} at the last step" in line and "0.00097" in line
    assert "--set optim.warmup_epochs=0.3" in line
    assert schedule_notes({**RECORD, "optim.warmup_epochs": 2.9}, 0) == []  # 29 of 30 steps: it decays at the end


def test_a_resume_that_changes_the_epochs_states_the_jump() -> None:
    longer = {**RECORD, "train.epochs": 6, "optim.warmup_epochs": 0.0}
    saved = {**RECORD, "optim.warmup_epochs": 0.0}
    [line] = schedule_notes(longer, 30, saved)
    # no warm-up: the 3-epoch schedule has decayed to 0 at step 30; the 6-epoch one is at its middle
    assert line == ("the learning-rate schedule changed on resume (train.epochs 3 → 6): at step 30 the rate goes "
                    "from 0 to 0.0005, as if the run had used the new schedule from its start")
    assert schedule_notes(saved, 30, saved) == []  # the same schedule: nothing to say
    assert schedule_notes(saved, 30, None) == []  # a checkpoint from before schedules were saved


def tiny_yaml(data, tmp_path: Path, out: Path) -> Path:
    from _engine_helpers import tiny_config

    from uglspot.config import dump_yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(dump_yaml(tiny_config(data, out, epochs=2)))
    return path


def interrupt_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("uglspot.engine.train.train_epoch", ctrl_c)


def test_ctrl_c_before_a_checkpoint_says_nothing_was_saved_after_the_warm_up_note(
        faults_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    interrupt_first_epoch(monkeypatch)
    run = tmp_path / "my run"
    config = tiny_yaml(faults_dataset, tmp_path, run)
    assert main(["train", str(config), "--set", "optim.warmup_epochs=2"]) == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("optim.warmup_epochs=2 covers all train.epochs=2: ")
    assert lines[-1] == (f"uglspot train: interrupted; no checkpoint was saved in {run} yet; "
                         "run the same command again to start over")


def test_ctrl_c_names_the_resume_command_and_a_longer_resume_states_the_new_schedule(
        faults_dataset, faults_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    import shlex

    from _engine_helpers import link_copy

    run = link_copy(faults_run[0], tmp_path / "my run")
    interrupt_first_epoch(monkeypatch)
    assert main(["train", "--resume", str(run), "--set", "train.epochs=4"]) == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"resuming {run.resolve()} from step 6, epoch 3/4")
    assert lines[1].startswith("the learning-rate schedule changed on resume (train.epochs 2 → 4): at step 6 "
                               "the rate goes from 0 to 0.00075")  # warm-up 3 steps, cosine (6-3)/(12-3)
    assert lines[-1] == ("uglspot train: interrupted; continue from its last checkpoint with "
                         f"`uglspot train --resume {shlex.quote(str(run.resolve()))}`")
    assert len(lines) == 3


def test_ctrl_c_elsewhere_is_one_plain_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import argparse

    def ctrl_c(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("uglspot.cli.parse", lambda parser, argv: argparse.Namespace(command="stats", func=ctrl_c))
    assert main(["stats", "labels"]) == 130
    assert capsys.readouterr().err == "uglspot stats: interrupted\n"
