"""Fault injection on a tiny run: training killed with a real SIGKILL at
precise points (inside atomic writes, between the best and last
publications, mid-epoch) resumes to the same last *and* best weights as an
uninterrupted run; a damaged artefact of each kind is refused in one line
naming the file; pointer files cannot make a run read or delete outside its
folder.

The killed runs are forked child processes (no second import of torch):
the child stops itself at the kill point and tells the parent over a pipe,
and the parent sends the SIGKILL, as an operator or the OOM killer would.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("uglspot.model.spotter")

from _engine_helpers import link_copy, rewrite, tiny_config  # noqa: E402

from uglspot.cli import main  # noqa: E402
from uglspot.config import dump_yaml  # noqa: E402
from uglspot.engine.state import load_state, resolve  # noqa: E402
from uglspot.engine.train import RunPosition, train  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")]

EPOCHS = dict(epochs=2, checkpoint_every=2)  # as conftest's faults_run: checkpoints at steps 2, 3, 4, 6


@pytest.fixture(scope="module")
def tiny(faults_dataset):
    return faults_dataset


@pytest.fixture(scope="module")
def whole(faults_run) -> tuple[Path, RunPosition]:
    """The uninterrupted reference run."""
    return faults_run


# --- kills ---------------------------------------------------------------------------------------


def kill_on_replace(pattern: str, when: str, occurrence: int = 1) -> Callable[[Path], None]:
    """Arm a kill at the ``occurrence``-th atomic rename whose destination
    (relative to the run) matches ``pattern``: ``before`` it (the new file
    exists only as its .tmp) or ``after`` it."""
    def arm(run: Path) -> None:
        real_replace, seen = os.replace, [0]

        def replace(src, dst, *args, **kwargs):
            relative = Path(dst).resolve().relative_to(run.resolve()).as_posix() \
                if str(Path(dst).resolve()).startswith(str(run.resolve())) else str(dst)
            hit = re.search(pattern, relative) is not None
            if hit:
                seen[0] += 1
            if hit and seen[0] == occurrence and when == "before":
                assert Path(src).is_file()  # the half-published file is there as a .tmp
                stop_here()
            real_replace(src, dst, *args, **kwargs)
            if hit and seen[0] == occurrence and when == "after":
                stop_here()

        os.replace = replace  # only ever in the forked child
    return arm


def kill_after_step(step: int) -> Callable[[Path], None]:
    def arm(run: Path) -> None:
        from uglspot.engine import train as train_module

        real = train_module.train

        def hooked(config, resume=False, hooks=()):
            return real(config, resume, [*hooks, lambda p, after: stop_here() if p.step == step else None])

        train_module.train = hooked
    return arm


_PIPE: list[int] = []


def stop_here() -> None:
    """In the child: tell the parent we reached the kill point, and wait for the SIGKILL."""
    os.write(_PIPE[0], b"k")
    time.sleep(120)
    os._exit(3)  # never reached: the parent kills us first


def run_killed(config, run: Path, arm: Callable[[Path], None]) -> None:
    """Fork a child that trains (resuming when the run has a last checkpoint)
    until the armed kill point, then SIGKILL it from here."""
    read_end, write_end = os.pipe()
    resume = (run / "checkpoints" / "last.json").is_file()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 4
        try:
            os.close(read_end)
            _PIPE[:] = [write_end]
            arm(run)
            from uglspot.engine import train as train_module

            train_module.train(config, resume=resume)
            code = 5  # finished without reaching the kill point
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        message = os.read(read_end, 1)  # b"" if the child exited without reaching the point
        if message == b"k":
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        f"the child was not killed at the armed point (exit status {status})"


def best_agrees_with_record(run: Path) -> None:
    """The invariant the kills must never break: the best score recorded in the
    last checkpoint belongs to the weights best.json points at."""
    checkpoints = run / "checkpoints"
    last = resolve(checkpoints, "last", missing_ok=True)
    if last is None:
        return
    progress = load_state(last)["progress"]
    best = resolve(checkpoints, "best", missing_ok=True)
    if progress["best"] is None:
        return
    assert best is not None, "a best score is recorded but no best weights are published"
    epoch = int(re.search(r"-e(\d+)-", best.name).group(1))
    assert epoch == progress["best_epoch"] + 1, (best.name, progress)


KILLS = [
    ("last weights half written (mid-epoch)", kill_on_replace(r"checkpoints/last-[^/]+/model\.safetensors$", "before")),
    ("last published mid-epoch", kill_on_replace(r"checkpoints/last\.json$", "after")),
    ("best weights half written", kill_on_replace(r"checkpoints/best-[^/]+/model\.safetensors$", "before")),
    ("between the best and the last publication", kill_on_replace(r"checkpoints/best\.json$", "after")),
    ("training state half written", kill_on_replace(r"checkpoints/last-[^/]+/training_state\.safetensors$", "after")),
    ("last pointer half written", kill_on_replace(r"checkpoints/last\.json$", "before")),
    ("last published at the epoch end", kill_on_replace(r"checkpoints/last\.json$", "after")),
    ("mid-epoch, between checkpoints", kill_after_step(5)),
]


def test_sigkill_at_every_publication_point_resumes_to_the_same_last_and_best(tiny, whole, tmp_path: Path) -> None:
    reference, reference_progress = whole
    run = tmp_path / "killed"
    config = tiny_config(tiny, run, **EPOCHS)
    for name, arm in KILLS:
        run_killed(config, run, arm)
        best_agrees_with_record(run)
    final = train(config, resume=True)

    assert (final.step, final.best, final.best_epoch) == \
        (reference_progress.step, reference_progress.best, reference_progress.best_epoch)
    for name in ("last", "best"):
        ours, theirs = resolve(run / "checkpoints", name), resolve(reference / "checkpoints", name)
        assert ours.name == theirs.name, name
        a, b = load_file(str(ours / "model.safetensors")), load_file(str(theirs / "model.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    for log in ("metrics.csv", "steps.csv"):
        columns = ["epoch", "step", "train_loss", "val_metric"] if log == "metrics.csv" else ["step", "epoch", "loss"]
        rows = [[[r[c] for c in columns] for r in csv.DictReader(open(r_ / log))] for r_ in (run, reference)]
        assert rows[0] == rows[1], log
    leftovers = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert leftovers == sorted(p.name for p in (reference / "checkpoints").iterdir())


def test_a_resume_logs_the_step_rows_an_uninterrupted_run_logs(tiny, tmp_path: Path) -> None:
    """A mid-epoch checkpoint inside an open log interval: the row logged after
    the resume covers the steps before the checkpoint too (it once covered only
    the steps after the resume)."""
    options = dict(epochs=2, checkpoint_every=2, log_every=5)  # 3 steps an epoch: rows at 3, 5, 6; last at 4
    reference = tmp_path / "whole"
    train(tiny_config(tiny, reference, **options))
    run = tmp_path / "killed"
    config = tiny_config(tiny, run, **options)
    run_killed(config, run, kill_after_step(5))
    assert load_state(resolve(run / "checkpoints", "last"))["progress"]["interval_steps"] == 1  # step 4
    train(config, resume=True)
    for log in ("steps.csv", "metrics.csv"):
        columns = ["step", "epoch", "loss"] if log == "steps.csv" else ["epoch", "step", "train_loss"]
        rows = [[[r[c] for c in columns] for r in csv.DictReader(open(folder / log))] for folder in (run, reference)]
        assert rows[0] == rows[1], log
    assert [r[0] for r in rows[0]] == ["1", "2"]  # metrics.csv: both epochs, once


# --- damaged artefacts ------------------------------------------------------------------------------


def one_line(capsys: pytest.CaptureFixture, code: int, expected_code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def flip_middle(path: Path, size: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    size = min(size, len(data) // 4)
    data[middle:middle + size] = bytes((b ^ 0x5A) for b in data[middle:middle + size])
    rewrite(path, bytes(data))


@pytest.fixture()
def copy_run(whole, tmp_path: Path) -> Path:
    return link_copy(whole[0], tmp_path / "run")


def test_damaged_weights_are_refused_naming_the_file(tiny, copy_run: Path, tmp_path: Path, capsys) -> None:
    weights = resolve(copy_run / "checkpoints", "best") / "model.safetensors"
    flip_middle(weights)
    video = tiny.videos / f"{tiny.splits['test'][0].video}.mp4"
    code = main(["spot", str(video), "--model", str(copy_run), "--entities", str(tiny.entities),
                 "--out", str(tmp_path / "out"), "--device", "cpu"])
    one_line(capsys, code, 1, str(weights), "damaged", "other checkpoint")
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_damaged_training_state_is_refused_naming_the_file(copy_run: Path, capsys) -> None:
    state = resolve(copy_run / "checkpoints", "last") / "training_state.safetensors"
    rewrite(state, state.read_bytes()[: state.stat().st_size // 2])  # truncated
    code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, str(state), "training state")


def test_an_edited_training_state_is_refused(copy_run: Path, capsys) -> None:
    """The JSON half of the state is under the checksum too: a step moved from
    4 to 1000 once resumed at learning rate 0 and exited 0."""
    last = resolve(copy_run / "checkpoints", "last")
    path = last / "training_state.json"
    text = path.read_text()
    step = load_state(last)["progress"]["step"]
    edited = text.replace(f'["step", {step}]', '["step", 1000]')
    assert edited != text
    rewrite(path, edited)
    code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, str(path), "damaged training state", "checksum")
    assert resolve(copy_run / "checkpoints", "last") == last  # nothing trained, nothing removed


@pytest.mark.parametrize("section", ["train", "infer"])
def test_a_saved_config_missing_a_section_is_refused(copy_run: Path, capsys, section: str) -> None:
    path = copy_run / "config.yaml"
    text = path.read_text()
    rewrite(path, text[: text.index(f"\n{section}:") + 1])  # cut before the section, as a torn copy would be
    code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, str(path), f"no {section}", "restore the file")
    assert path.read_text() == text[: text.index(f"\n{section}:") + 1]  # left as it was, for the user to see


@pytest.mark.parametrize("command", ["spot", "resume"])
def test_a_pointer_whose_folder_is_gone_is_the_same_error_everywhere(tiny, copy_run: Path, tmp_path: Path,
                                                                     capsys, command: str) -> None:
    """`spot` once fell back to `last` without a word when `best` was gone, while
    resume called the same run damaged."""
    name = "best" if command == "spot" else "last"
    gone = resolve(copy_run / "checkpoints", name)
    shutil.rmtree(gone)
    if command == "spot":
        video = tiny.videos / f"{tiny.splits['test'][0].video}.mp4"
        code = main(["spot", str(video), "--model", str(copy_run), "--entities", str(tiny.entities),
                     "--out", str(tmp_path / "out"), "--device", "cpu"])
    else:
        code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, f"{name}.json: points at {gone.name}, which is missing", "delete")


def test_spot_checks_the_stores_rate_as_predict_does(tiny, whole, tmp_path: Path, capsys) -> None:
    """Stores detected at another rate than the frames: `spot` once went on
    (212 events where the right stores gave 166) while `predict` refused."""
    from uglspot.entities.store import EntityStore, StoreKey, store_path
    from uglspot.video import probe

    stores = tmp_path / "entities"
    shutil.copytree(tiny.entities, stores)
    video = tiny.splits["test"][0].video
    path = store_path(stores, video)
    header = EntityStore.read_header(path)
    rate = probe(tiny.videos / f"{video}.mp4").fps  # the model decodes at each video's own rate
    key = StoreKey.from_json({**header["key"], "fps": rate / 2})
    path.unlink()
    EntityStore.write(path, key, header["num_frames"] // 2, [])  # what `detect --fps` at half the rate makes
    code = main(["spot", str(tiny.videos / f"{video}.mp4"), "--model", str(whole[0]), "--entities", str(stores),
                 "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    assert f"entities detected at {rate / 2:g} fps but the frames are decoded at {rate:g} fps" in err, err
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_a_hand_edited_saved_config_is_refused(copy_run: Path, capsys) -> None:
    """The run's config.yaml is under the checksum its last checkpoint records:
    an edit would resume with settings the run did not start with."""
    path = copy_run / "config.yaml"
    text = path.read_text()
    edited = text.replace("lr: 0.001", "lr: 0.01")
    assert edited != text
    rewrite(path, edited)
    code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, str(path), "changed since the run wrote it", "--set")
    assert path.read_text() == edited  # left for the user to see


def test_damaged_entity_store_is_refused_naming_the_file(tiny, whole, tmp_path: Path, capsys) -> None:
    from uglspot.entities.store import store_path as entity_store_path

    stores = tmp_path / "entities"
    shutil.copytree(tiny.entities, stores)
    video = tiny.splits["test"][0].video
    store = entity_store_path(stores, video)
    data = bytearray(store.read_bytes())
    data[-64:] = bytes(64)  # the last boxes and scores zeroed, the header intact
    store.write_bytes(bytes(data))
    code = main(["spot", str(tiny.videos / f"{video}.mp4"), "--model", str(whole[0]), "--entities", str(stores),
                 "--out", str(tmp_path / "out"), "--device", "cpu"])
    one_line(capsys, code, 1, str(store), "damaged", "uglspot detect")


@pytest.fixture(scope="module")
def frame_cache(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "frames"
    videos = [str(tiny.videos / f"{v.video}.mp4") for split in ("train", "val") for v in tiny.splits[split]]
    assert main(["frames", *videos, "--out", str(out), "--height", "32"]) == 0
    return out


@pytest.mark.parametrize("damage, file, words", [
    ("truncate", "index.npy", "frame cache index"),
    ("flip", "index.npy", "frame cache index"),
    ("flip", "crc32.npy", "frame cache checksums"),
    ("truncate", "frames.bin", "damaged frame cache"),
    ("garble", "meta.json", "frame cache metadata"),
    ("empty-object", "meta.json", "frame cache metadata"),
])
def test_damaged_frame_cache_is_refused_naming_the_file(tiny, frame_cache: Path, tmp_path: Path, capsys,
                                                        damage: str, file: str, words: str) -> None:
    cache = tmp_path / "frames"
    shutil.copytree(frame_cache, cache)
    target = cache / tiny.splits["train"][0].video / file
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size - 9])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-3] ^= 0x01
        target.write_bytes(bytes(data))
    elif damage == "garble":
        target.write_text(target.read_text()[:40])
    else:
        target.write_text("{}")
    config_path = tmp_path / "config.yaml"
    config = tiny_config(tiny, tmp_path / "run", epochs=1)
    config.data.frame_cache = str(cache)
    config_path.write_text(dump_yaml(config))
    code = main(["train", str(config_path)])
    one_line(capsys, code, 1, str(target), words, "uglspot frames")


# --- out of the folder -------------------------------------------------------------------------------


@pytest.mark.parametrize("pointer", ["best.json", "last.json"])
@pytest.mark.parametrize("target", ["../../victim", "/tmp", "..", "last-e0001-s00000003/../../../victim"])
def test_a_pointer_cannot_reach_outside_the_run(copy_run: Path, capsys, pointer: str, target: str) -> None:
    victim = copy_run.parent / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    rewrite(copy_run / "checkpoints" / pointer, json.dumps({"directory": target}))
    code = main(["train", "--resume", str(copy_run)])
    one_line(capsys, code, 1, str(copy_run / "checkpoints" / pointer), "not a checkpoint pointer")
    assert (victim / "precious.txt").read_text() == "keep me"
    assert Path("/tmp").is_dir()


def test_only_checkpoint_folders_the_run_made_are_removed(copy_run: Path) -> None:
    from uglspot.engine.state import remove_unpublished

    checkpoints = copy_run / "checkpoints"
    (checkpoints / "notes").mkdir()
    (checkpoints / "notes" / "a.txt").write_text("mine")
    (checkpoints / "last-e0009-s00000099").mkdir()  # half written by a killed run
    remove_unpublished(checkpoints)
    assert (checkpoints / "notes" / "a.txt").read_text() == "mine"
    assert not (checkpoints / "last-e0009-s00000099").exists()
    assert resolve(checkpoints, "last").is_dir() and resolve(checkpoints, "best").is_dir()


def test_a_label_id_cannot_name_a_video_outside_data_videos(tiny, tmp_path: Path, capsys) -> None:
    from uglspot.data.labels import Video, write_e2e_labels

    labels = tmp_path / "labels"
    shutil.copytree(tiny.labels, labels)
    outside = tmp_path / "secret.mp4"
    shutil.copy(tiny.videos / f"{tiny.splits['train'][0].video}.mp4", outside)
    escape = os.path.relpath(outside.with_suffix(""), tiny.videos)  # ../../.../secret
    write_e2e_labels([Video(escape, 40, 10.0, [], 48, 32)], labels / "train.json")
    config = tiny_config(tiny, tmp_path / "run", epochs=1, val_every=5)
    config.data.labels, config.data.entities, config.data.val_split = str(labels), None, None
    config.model.options["use_entities"] = False
    config_path = tmp_path / "config.yaml"
    config_path.write_text(dump_yaml(config))
    code = main(["train", str(config_path)])
    one_line(capsys, code, 1, repr(escape), "inside")


def test_frames_never_writes_through_a_link_in_a_videos_place(tiny, tmp_path: Path, capsys) -> None:
    """A symlink at OUT/<video> once made `frames` write frames.bin, index.npy and
    meta.json into the link's target, replacing its meta.json."""
    keep = tmp_path / "elsewhere"
    keep.mkdir()
    (keep / "meta.json").write_text("the user's own file")
    out = tmp_path / "frames"
    out.mkdir()
    first, second = (tiny.splits["train"][i].video for i in (0, 1))
    (out / first).symlink_to(keep, target_is_directory=True)
    code = main(["frames", *(str(tiny.videos / f"{v}.mp4") for v in (first, second)), "--out", str(out),
                 "--height", "32"])
    err = capsys.readouterr().err
    assert code == 1 and "symbolic link" in err and str(out / first) in err and "Traceback" not in err, err
    assert sorted(p.name for p in keep.iterdir()) == ["meta.json"]
    assert (keep / "meta.json").read_text() == "the user's own file"
    assert (out / second / "meta.json").is_file()  # the other video went on


def test_spot_never_writes_through_a_link_in_a_videos_place(tiny, whole, tmp_path: Path, capsys) -> None:
    """A symlink at OUT/<video> once made `spot` write events.json into its target."""
    keep = tmp_path / "elsewhere"
    keep.mkdir()
    (keep / "events.json").write_text("the user's own file")
    out = tmp_path / "out"
    out.mkdir()
    first, second = (tiny.splits["test"][0].video, tiny.splits["val"][0].video)
    (out / first).symlink_to(keep, target_is_directory=True)
    code = main(["spot", *(str(tiny.videos / f"{v}.mp4") for v in (first, second)), "--model", str(whole[0]),
                 "--entities", str(tiny.entities), "--out", str(out), "--device", "cpu", "--no-plot"])
    err = capsys.readouterr().err
    assert code == 1 and "symbolic link" in err and "Traceback" not in err, err
    assert (keep / "events.json").read_text() == "the user's own file"
    assert sorted(p.name for p in keep.iterdir()) == ["events.json"]
    assert (out / second / "events.json").is_file()  # the other video went on


def test_a_link_in_a_checkpoints_place_is_one_line(tiny, tmp_path: Path, capsys) -> None:
    """It once ended in `internal error: OSError: Cannot call rmtree on a symbolic link`."""
    keep = tmp_path / "elsewhere"
    keep.mkdir()
    (keep / "notes.txt").write_text("kept")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last-e0000-s00000002").symlink_to(keep, target_is_directory=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(dump_yaml(tiny_config(tiny, run, epochs=1, checkpoint_every=2)))
    # a warm-up shorter than the one epoch, or a line would say that it covers the whole run
    code = main(["train", str(config_path), "--set", "optim.warmup_epochs=0.5"])
    one_line(capsys, code, 1, str(run / "checkpoints" / "last-e0000-s00000002"), "symbolic link")
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]


def test_report_skips_an_absolute_video_id_and_says_so(tiny, tmp_path: Path) -> None:
    from uglspot.report.html import build_report
    from uglspot.report.inputs import load_inputs

    run = tmp_path / "pred"
    real = tiny.videos / f"{tiny.splits['test'][0].video}.mp4"
    for video_id in (str(real), "/etc/passwd"):
        folder = run / "v" / video_id.strip("/").replace("/", "_")
        folder.mkdir(parents=True)
        (folder / "events.json").write_text(json.dumps({
            "video": video_id, "fps": 10.0, "num_frames": 40,
            "events": [{"frame": 5, "label": "flash", "score": 0.9, "time": 0.5,
                        "entities": [{"box": [0.1, 0.1, 0.3, 0.3], "class": "ball", "weight": 1.0}]}]}))
    inputs = load_inputs(run / "v", videos=tiny.videos)
    assert inputs.videos == {}  # neither absolute id is looked up, even the real video
    document, _ = build_report(inputs)
    assert document.count("video refused") == 2


def test_atomic_writes_keep_the_umask_permissions(tmp_path: Path) -> None:
    from uglspot.io import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"a": 1})
        os.umask(0o077)
        write_json_atomic(tmp_path / "b.json", {"b": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "a.json").chmod(0o640)  # an existing file keeps its own mode, as with open(..., "w")
    write_json_atomic(tmp_path / "a.json", {"a": 2})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
