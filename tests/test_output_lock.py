"""One writer per output folder (issue 21): a second `train`, `frames`,
`detect`, `spot`, `predict`, `synth` or `demo` into a folder another process
is writing is refused at once with one line naming the holder, and a lock
left by a killed process is taken over. Every case runs real, separate
processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from uglspot.errors import UserError
from uglspot.lock import LOCK_NAME, output_lock

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1"}

HOLD = """
import sys
from uglspot.lock import output_lock
with output_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def start(script: str, *args: str) -> subprocess.Popen:
    """A Python process running ``script``; returns once it printed its first line."""
    process = subprocess.Popen([sys.executable, "-c", script, *args], env=ENV, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stdout.readline()
    assert line.strip() in ("held", "ready"), process.communicate()[1][-3000:]
    return process


def uglspot(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uglspot", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def release(process: subprocess.Popen) -> str:
    """Let a holder finish; its stderr."""
    _, err = process.communicate("", timeout=300)
    assert process.returncode == 0, err[-3000:]
    return err


def assert_refused(result: subprocess.CompletedProcess, folder: Path, holder: subprocess.Popen, command: str) -> None:
    """Exit 1 with one line: the folder, who holds it (command, pid, host, start time), and what to do."""
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert f"{folder}: in use by uglspot {command} (pid {holder.pid} on host {socket.gethostname()}, started " in line
    assert "wait for it to finish, or choose another output folder" in line


@pytest.mark.parametrize("command, args", [
    ("frames", ["missing.mp4", "--fps", "2"]),
    ("detect", ["missing.mp4", "--fps", "2"]),
    ("spot", ["missing.mp4", "--model", "missing-run"]),
])
def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path, command: str, args: list[str]) -> None:
    folder = tmp_path / "out"
    holder = start(HOLD, str(folder), command)
    try:
        (folder / "mine.json").write_text("{}")  # the holder's output so far
        result = uglspot(command, *args, "--out", str(folder))
    finally:
        release(holder)
    assert_refused(result, folder, holder, command)
    assert sorted(p.name for p in folder.iterdir()) == ["mine.json"]  # nothing added, the lock file removed
    again = uglspot(command, *args, "--out", str(folder))  # free again: it gets to its (missing) input
    assert again.returncode == 1 and "missing" in again.stderr and "in use by" not in again.stderr


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    from _engine_helpers import render, write_video

    video = tmp_path / "clip.mp4"
    write_video(video, render(12, [], seed=0))
    cache = tmp_path / "cache"
    holder = start(HOLD, str(cache), "frames")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    left = json.loads((cache / LOCK_NAME).read_text())  # the dead holder's record is still there
    assert left["pid"] == holder.pid
    result = uglspot("frames", str(video), "--out", str(cache))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"taking over the lock of uglspot frames (pid {holder.pid} on host" in result.stderr
    assert (cache / "clip" / "meta.json").is_file()
    assert not (cache / LOCK_NAME).exists()


def test_the_lock_file_follows_the_umask_and_is_never_followed_through_a_symlink(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        with output_lock(tmp_path / "a", "frames") as path:
            assert path.stat().st_mode & 0o777 == 0o664
            record = json.loads(path.read_text())
            assert record["pid"] == os.getpid() and record["command"] == "frames"
    finally:
        os.umask(old)
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / LOCK_NAME).symlink_to(target)
    with pytest.raises(UserError, match="lock file is a symbolic link"):
        with output_lock(tmp_path / "b", "spot"):
            pass
    assert target.read_text() == "keep"


def test_a_refused_or_finished_command_leaves_no_folder_it_created(tmp_path: Path) -> None:
    with output_lock(tmp_path / "new", "spot"):
        pass
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="exists and is not a folder"):
        with output_lock(tmp_path / "file", "spot"):
            pass


def test_only_the_main_rank_locks(tmp_path: Path) -> None:
    """Under torchrun the other ranks write on the main rank's behalf: they
    take no lock, so a job never refuses itself."""
    from uglspot.engine.runtime import Distributed, main_rank_lock

    with main_rank_lock(Distributed(rank=0, world_size=1), tmp_path / "run", "train"):
        with main_rank_lock(Distributed(rank=1, world_size=2), tmp_path / "run", "train"):
            assert (tmp_path / "run" / LOCK_NAME).is_file()
        with pytest.raises(UserError, match="in use by uglspot train"):  # a second main rank is another job
            with main_rank_lock(Distributed(rank=0, world_size=1), tmp_path / "run", "train"):
                pass


TRAIN_PAUSED = """
import sys
from uglspot.engine.config import load_run_config
from uglspot.engine.train import train

def pause(progress, after):
    if progress.step == 1 and after == "step":
        print("ready", flush=True)
        sys.stdin.read()

train(load_run_config(sys.argv[1], []), hooks=[pause])
"""


@pytest.mark.slow
def test_two_trainings_into_one_run_folder(tmp_path: Path) -> None:
    """A run in progress refuses a second `train --out` and a `--resume` of
    itself; it then ends with each epoch logged once."""
    import csv

    from _engine_helpers import make_dataset, tiny_config

    from uglspot.config import dump_yaml

    data = make_dataset(tmp_path / "data", {"train": 1, "val": 1})
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(dump_yaml(tiny_config(data, run, epochs=1)))
    holder = start(TRAIN_PAUSED, str(config))
    try:
        fresh = uglspot("train", str(config), "--set", "train.seed=5", "--out", str(run))
        resumed = uglspot("train", "--resume", str(run))
    finally:
        release(holder)
    assert_refused(fresh, run, holder, "train")
    assert_refused(resumed, run, holder, "train")
    with open(run / "metrics.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]
    assert not (run / LOCK_NAME).exists()


@pytest.mark.parametrize("command, args", [
    ("synth", ["--matches", "3", "--minutes", "0.1", "--width", "64", "--height", "36"]),
    ("demo", ["--quick"]),
])
def test_a_second_render_into_a_new_folder_is_refused_naming_the_holder(tmp_path: Path, command: str,
                                                                         args: list[str]) -> None:
    """`synth` and `demo` write only into a new or empty folder, but two started
    at once would both have found it empty: the second is refused by the lock."""
    folder = tmp_path / "out"
    holder = start(HOLD, str(folder), command)
    try:
        result = uglspot(command, *args, "--out", str(folder))
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # nothing written beside the holder
    finally:
        release(holder)
    assert_refused(result, folder, holder, command)
    assert not folder.exists()  # the holder's lock gone, and with it the folder it made


def test_a_second_predict_into_one_folder_is_refused_naming_the_holder(faults_run, tmp_path: Path) -> None:
    """Two predictions into one folder would each rewrite predictions.json and metrics.json."""
    run, _ = faults_run
    folder = tmp_path / "out"
    holder = start(HOLD, str(folder), "predict")
    try:
        (folder / "predictions.json").write_text("[]")  # the holder's output so far
        result = uglspot("predict", str(run / "config.yaml"), "--model", str(run), "--out", str(folder),
                         "--device", "cpu")
        assert (folder / "predictions.json").read_text() == "[]"
    finally:
        release(holder)
    assert_refused(result, folder, holder, "predict")
