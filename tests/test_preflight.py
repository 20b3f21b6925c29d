"""Preflight of ``train`` and ``predict``: everything that can be known before
the first step is checked at once, listed one problem a line, and a failed
check leaves no run folder. One test per user report of issue 12:

- labels and entity stores at another rate than data.fps trained an epoch
  and failed at validation on the SoccerNet metric;
- a wrong data.videos failed on the first missing video after the run
  folder was made;
- the SoccerNet config was killed by the kernel on a 2-core CPU machine.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from _engine_helpers import make_dataset, tiny_config
from uglspot.cli import main
from uglspot.config import dump_yaml
from uglspot.engine import preflight
from uglspot.engine.preflight import (GIB, Machine, PreflightError, RunShape, check_training, estimate_memory,
                                      memory_problem)

REPO = Path(__file__).resolve().parents[1]
ROOMY = Machine(cores=64, ram_available=1024 * GIB)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("preflight"), {"train": 3, "val": 2, "test": 2}, num_frames=24)


def write_config(config, path: Path) -> Path:
    path.write_text(dump_yaml(config))
    return path


def errors(capsys) -> list[str]:
    return [line.strip() for line in capsys.readouterr().err.splitlines() if line.strip()]


# ---------------------------------------------------------------- frame rate and metric


def test_labels_and_stores_at_another_rate_and_a_soccernet_metric_fail_before_any_step(data, tmp_path, capsys):
    """Labels and stores at 10 fps, data.fps 2.5, metric soccernet_tight on
    ids that are not halves: three problems, one run, no folder."""
    from uglspot.entities.store import EntityStore, store_path

    stores = tmp_path / "stores"
    for video in data.splits["train"] + data.splits["val"]:
        old = EntityStore.open(store_path(data.entities, video.video))
        key = dataclasses.replace(old.key, fps=10.0)  # detected at the labels' 10 fps, as `detect --fps 10` does
        empty = {"boxes": np.zeros((0, 4), np.float32), "cls": np.zeros(0, np.int64),
                 "score": np.zeros(0, np.float32)}
        EntityStore.write(store_path(stores, video.video), key, video.num_frames, [empty] * video.num_frames)
    run = tmp_path / "run"
    config = tiny_config(data, run, metric="soccernet_tight")
    config.data = dataclasses.replace(config.data, fps=2.5, entities=str(stores))
    code = main(["train", str(write_config(config, tmp_path / "c.yaml"))])
    lines = errors(capsys)
    assert code == 1 and not run.exists(), lines
    text = "\n".join(lines)
    assert "data.fps=2.5 but the labels of 5 video(s) count frames at 10 fps" in text
    assert "--set data.fps=10" in text
    assert text.count("entities detected at 10 fps but the frames are decoded at 2.5 fps") == 5
    assert "val_0, val_1" in text and "--set train.metric=frame_map" in text
    assert lines[0].startswith("uglspot train: error:") and "problems found before training started" in lines[0]


# ---------------------------------------------------------------- missing videos


def test_a_wrong_videos_folder_lists_every_missing_video_and_leaves_no_run_folder(data, tmp_path, capsys):
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    config = write_config(tiny_config(data, tmp_path / "run"), tmp_path / "c.yaml")
    code = main(["train", str(config), "--set", f"data.videos={wrong}"])
    lines = errors(capsys)
    assert code == 1 and not (tmp_path / "run").exists(), lines
    for video in data.splits["train"] + data.splits["val"]:
        assert sum(f"video {video.video!r}: no file" in line for line in lines) == 1, (video.video, lines)
    assert any("none of the 5 videos" in line for line in lines)


def test_a_folder_that_does_not_exist_is_one_line(data, tmp_path, capsys):
    config = write_config(tiny_config(data, tmp_path / "run"), tmp_path / "c.yaml")
    assert main(["train", str(config), "--set", f"data.videos={tmp_path / 'nowhere'}"]) == 1
    lines = errors(capsys)
    assert len(lines) == 1 and "nowhere: no such folder" in lines[0] and not (tmp_path / "run").exists()


def test_a_failed_preflight_leaves_an_existing_run_folder_as_it_was(data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    config = write_config(tiny_config(data, run), tmp_path / "c.yaml")
    assert main(["train", str(config), "--set", f"data.videos={data.labels}"]) == 1
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_a_video_of_another_length_is_named_with_both_counts(data, tmp_path, capsys):
    from _engine_helpers import render, write_video

    videos = tmp_path / "videos"
    for path in data.videos.glob("*.mp4"):
        (videos / path.name).parent.mkdir(exist_ok=True)
        (videos / path.name).write_bytes(path.read_bytes())
    write_video(videos / "train_1.mp4", render(8, [], 0))  # 8 frames, the labels say 24
    (videos / "val_0.mp4").write_bytes(b"not a video")
    config = tiny_config(data, tmp_path / "run")
    config.data = dataclasses.replace(config.data, videos=str(videos))
    with pytest.raises(PreflightError) as info:
        check_training(config, machine=ROOMY)
    assert len(info.value.problems) == 2, info.value.problems
    assert any("train_1.mp4: 8 frames at 10 fps but the labels of 'train_1' say 24" in p for p in info.value.problems)
    assert any("val_0.mp4: not a readable video" in p for p in info.value.problems)


def test_predict_lists_missing_videos_before_spotting_and_writes_nothing(faults_dataset, faults_run, tmp_path,
                                                                         capsys):
    run, _ = faults_run
    out = tmp_path / "pred"
    code = main(["predict", str(run / "config.yaml"), "--model", str(run), "--split", "test", "--out", str(out),
                 "--device", "cpu", "--set", f"data.videos={tmp_path}"])
    lines = errors(capsys)
    assert code == 1 and not out.exists(), lines
    for video in faults_dataset.splits["test"]:
        assert any(f"video {video.video!r}: no file" in line for line in lines), lines


def test_a_good_configuration_passes(data, tmp_path):
    checked = check_training(tiny_config(data, tmp_path / "run"), machine=ROOMY)
    assert checked.device.type == "cpu" and checked.entity_settings["prompt"]
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- machine: cores and memory


def shape(**changes) -> RunShape:
    base = dict(batch_size=8, clip_len=100, height=224, width=398, model_pixels=224 * 398,
                backbone="regnety_008", entity_slots=50, workers=8, training=True)
    return RunShape(**{**base, **changes})


def test_the_memory_estimate_of_a_one_pixel_clip_is_its_parts() -> None:
    one = estimate_memory(RunShape(batch_size=1, clip_len=1, height=1, width=1, model_pixels=1,
                                   backbone="regnety_002", workers=0))
    # process + one uint8 batch (3 bytes) + fp32 activations of one pixel + its float input (12 bytes)
    expected = preflight.PROCESS_BYTES + 3 + preflight.ACTIVATION_BYTES[("regnety_002", "train", "fp32")] + 12
    assert (one.ram, one.gpu) == (expected, 0)


@pytest.mark.parametrize("change, grows", [
    (dict(batch_size=16), True), (dict(clip_len=50), False), (dict(model_pixels=224 * 224), False),
    (dict(workers=0), False), (dict(backbone="regnety_002"), False), (dict(entity_slots=0), False),
    (dict(training=False), False), (dict(processes=2), True), (dict(backbone="some_other_net"), None),
])
def test_the_memory_estimate_moves_with_each_setting(change, grows) -> None:
    base, changed = estimate_memory(shape()).ram, estimate_memory(shape(**change)).ram
    if grows is None:  # an unknown backbone counts as the largest
        assert changed == base
    else:
        assert (changed > base) if grows else (changed < base)


def test_on_a_gpu_the_activations_leave_ram_and_mixed_precision_takes_less() -> None:
    cpu, gpu = estimate_memory(shape()), estimate_memory(shape(gpu=True))
    mixed = estimate_memory(shape(gpu=True, mixed_precision=True))
    assert gpu.ram < cpu.ram and gpu.gpu > mixed.gpu > 0 and cpu.gpu == 0
    assert gpu.ram - (cpu.ram - cpu.parts["activations"]) == 0


@pytest.mark.parametrize("free_gib, fits", [(4, False), (40, False), (400, True)])
def test_the_soccernet_step_on_cpu_fits_only_a_big_machine(free_gib, fits) -> None:
    line = memory_problem(shape(), Machine(cores=64, ram_available=free_gib * GIB), "train.batch_size", "train.batch_size")
    assert (line is None) == fits
    if line and free_gib == 40:
        smaller = int(line.split("--set train.batch_size=")[1].split()[0])
        assert 1 <= smaller < 8
        assert estimate_memory(shape(batch_size=smaller)).ram <= 40 * GIB < estimate_memory(
            shape(batch_size=smaller + 1)).ram


def test_the_soccernet_config_on_a_small_cpu_machine_is_refused_up_front(data, tmp_path, monkeypatch, capsys):
    """configs/soccernetv2.yaml on 2 cores and 16 GiB: workers and memory are
    named with the keys that fix them, before any model is built."""
    small = Machine(cores=2, ram_available=16 * GIB)
    monkeypatch.setattr(preflight, "read_machine", lambda device=None: small)
    run = tmp_path / "run"
    argv = ["train", str(REPO / "configs" / "soccernetv2.yaml"), "--out", str(run),
            "--set", f"data.labels={data.labels}", "--set", f"data.videos={data.videos}",
            "--set", f"data.entities={data.entities}", "--set", "train.device=cpu"]
    assert main(argv) == 1
    lines = errors(capsys)
    assert not run.exists()
    assert any("data.workers=8: 8 data-loader processes but this machine has 2 CPU core(s); "
               "--set data.workers=2" in line for line in lines), lines
    memory = [line for line in lines if line.startswith("memory:")]
    assert len(memory) == 1 and "of RAM but 16.0 GiB is free" in memory[0]
    for key in ("train.batch_size", "data.clip_len", "data.height", "augment.crop", "model.name"):
        assert key in memory[0]
    # the same, with the workers set explicitly and a batch that fits: those two lines go
    assert main(argv + ["--set", "data.workers=8", "--set", "train.batch_size=1", "--set", "data.clip_len=8"]) == 1
    rest = errors(capsys)
    assert not any("data.workers" in line or line.startswith("memory:") for line in rest), rest


def _problems_beside_five_missing_videos(config, empty_folder: Path) -> list[str]:
    """Preflight's problems for ``config`` with its videos looked for in an
    empty folder: the five missing videos must be listed with the rest."""
    config.data = dataclasses.replace(config.data, videos=str(empty_folder))
    with pytest.raises(PreflightError) as info:
        check_training(config, machine=ROOMY)
    assert sum("no file" in p for p in info.value.problems) == 5
    return info.value.problems


def test_a_missing_device_is_listed_with_the_rest(data, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    problems = _problems_beside_five_missing_videos(tiny_config(data, tmp_path / "run", device="cuda"), tmp_path)
    assert any("train.device=cuda: CUDA is not available" in p for p in problems)


def test_this_machine_is_read() -> None:
    machine = preflight.read_machine()
    assert 1 <= machine.cores <= (os.cpu_count() or 1)
    if Path("/proc/meminfo").is_file():
        assert 0 < machine.ram_available


def test_an_amp_mode_the_device_lacks_is_listed_with_the_rest(data, tmp_path):
    problems = _problems_beside_five_missing_videos(tiny_config(data, tmp_path / "run", amp="fp16"), tmp_path)
    assert any("train.amp=fp16 needs a CUDA device" in p for p in problems)


def test_errors_with_their_own_arguments_survive_a_process_boundary() -> None:
    """The demo trains its variants in worker processes: an error raised
    there is pickled to the parent, and one that cannot be rebuilt there
    broke the pool and hid the user's message behind BrokenProcessPool."""
    import pickle

    from uglspot.errors import BatchFailures

    for error in (PreflightError("training", ["a: missing", "b: missing"]), PreflightError("training", ["a: x"]),
                  BatchFailures("videos", [("v1", "no file"), ("v2", "bad frame")])):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert pickle.loads(pickle.dumps(PreflightError("training", ["a", "b"]))).problems == ["a", "b"]
