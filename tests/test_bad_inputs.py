"""Bad inputs through the real command line: every case ends with one line on
stderr, the exit code of its kind (1 for bad input, 2 for a bad option), the
key or file named, and no traceback. The cases are what a hostile or unlucky
user tried (odd settings, damaged run files, garbled labels) and more."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("uglspot.model.spotter")

from _engine_helpers import link_copy, rewrite, tiny_config  # noqa: E402

from uglspot.cli import main  # noqa: E402
from uglspot.config import dump_yaml  # noqa: E402
from uglspot.engine.state import resolve  # noqa: E402

pytestmark = pytest.mark.slow


@dataclass
class Context:
    tmp: Path
    dataset: object
    reference_run: Path

    @property
    def config(self) -> Path:
        path = self.tmp / "config.yaml"
        if not path.is_file():
            path.write_text(dump_yaml(tiny_config(self.dataset, self.tmp / "new-run", epochs=1)))
        return path

    @property
    def run(self) -> Path:
        """A private copy of the trained run, made on first use."""
        path = self.tmp / "run"
        if not path.is_dir():
            link_copy(self.reference_run, path)
        return path

    def checkpoint(self, name: str) -> Path:
        return resolve(self.run / "checkpoints", name)

    @property
    def video(self) -> str:
        return str(self.dataset.videos / f"{self.dataset.splits['test'][0].video}.mp4")

    def spot(self) -> list[str]:
        return ["spot", self.video, "--model", str(self.run), "--entities", str(self.dataset.entities),
                "--out", str(self.tmp / "spotted"), "--device", "cpu"]

    def labels(self, **changes: object) -> Path:
        """A one-video E2E-Spot labels file with ``changes`` to its record."""
        record = {"video": "v", "num_frames": 40, "fps": 10.0, "events": [{"frame": 3, "label": "flash"}],
                  **changes}
        path = self.tmp / "labels" / "test.json"
        path.parent.mkdir(exist_ok=True)
        (path.parent / "class.txt").write_text("flash\nred\n")
        path.write_text(json.dumps([record]))  # json writes NaN / Infinity as Python reads them back
        return path


Case = tuple[str, Callable[[Context], list[str]], int, Callable[[Context], list[str]]]


def setting(key: str, value: str) -> Case:
    """``uglspot train CONFIG --set key=value``: refused naming the key."""
    return (f"--set {key}={value}", lambda c: ["train", str(c.config), "--set", f"{key}={value}"], 1,
            lambda c: [key.split(".")[-1]])


def option(argv: list[str], name: str) -> Case:
    """A command-line number out of range: argparse refuses it naming the option (exit 2)."""
    return (" ".join(argv), lambda c: [a.replace("VIDEO", c.video) for a in argv], 2, lambda c: [name])


def damaged_run(name: str, edit: Callable[[Context], Path], command: str, *words: str) -> Case:
    """A file of a trained run damaged by ``edit`` (which returns it): the
    command refuses it naming the file."""
    def argv(c: Context) -> list[str]:
        c.damaged = edit(c)
        return ["train", "--resume", str(c.run)] if command == "resume" else c.spot()
    return (name, argv, 1, lambda c: [str(c.damaged), *words])


def labels_case(name: str, command: str, words: list[str], **changes: object) -> Case:
    def argv(c: Context) -> list[str]:
        path = c.labels(**changes)
        if command == "stats":
            return ["stats", str(path)]
        predictions = c.tmp / "pred.json"
        predictions.write_text(json.dumps([{"video": "v", "events": [{"frame": 3, "label": "flash", "score": 0.5}]}]))
        return ["eval", "frames", str(path), str(predictions)]
    return (name, argv, 1, lambda c: [str(c.tmp / "labels" / "test.json"), *words])


def predictions_case(name: str, events: list, words: list[str]) -> Case:
    def argv(c: Context) -> list[str]:
        path = c.tmp / "pred.json"
        path.write_text(json.dumps([{"video": "v", "events": events}]))
        return ["eval", "frames", str(c.labels()), str(path)]
    return (name, argv, 1, lambda c: [str(c.tmp / "pred.json"), *words])


def pointer(name: str, content: str) -> Callable[[Context], Path]:
    def edit(c: Context) -> Path:
        path = c.run / "checkpoints" / f"{name}.json"
        rewrite(path, content)
        return path
    return edit


def in_checkpoint(name: str, file: str, change: Callable[[bytes], bytes]) -> Callable[[Context], Path]:
    def edit(c: Context) -> Path:
        path = c.checkpoint(name) / file
        rewrite(path, change(path.read_bytes()))
        return path
    return edit


def in_run(file: str, content: str | bytes) -> Callable[[Context], Path]:
    def edit(c: Context) -> Path:
        path = c.run / file
        rewrite(path, content)
        return path
    return edit


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def zero_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(4096) + data[middle + 4096:]


CASES: list[Case] = [
    # settings, each refused when the config is read, naming the key
    setting("train.batch_size", "0"), setting("optim.accumulate", "0"), setting("train.log_every", "0"),
    setting("train.val_every", "0"), setting("optim.lr", ".nan"), setting("optim.lr", ".inf"),
    setting("optim.lr", "-0.001"), setting("data.workers", "-1"), setting("train.device", "tpu9"),
    setting("train.device", "cuda:x"), setting("train.epochs", "-1"), setting("train.epochs", "0"),
    setting("augment.crop", "[64, 64]"), setting("data.pad", "-100"), setting("data.fps", "0"),
    setting("data.fps", ".nan"), setting("data.clip_len", "0"), setting("train.epoch_frames", "0"),
    setting("train.seed", "-1"), setting("infer.threshold", "2"), setting("optim.grad_clip", "0"),
    setting("data.height", "0"), setting("train.batch_size", "1000000000000000000000000000000"),
    setting("augment.jitter_p", "1.5"), setting("augment.blur_kernel", "4"), setting("train.max_bad_steps", "0"),
    setting("data.entity_slots", "0"), setting("optim.warmup_start", "2"), setting("train.checkpoint_every", "-1"),
    setting("infer.nms_window", "-1"), setting("train.bogus", "1"), setting("train.batch_size", "abc"),
    # command-line numbers
    option(["spot", "VIDEO", "--threshold", "nan"], "--threshold"),
    option(["spot", "VIDEO", "--threshold", "1.5"], "--threshold"),
    option(["spot", "VIDEO", "--nms-window", "-1"], "--nms-window"),
    option(["detect", "VIDEO", "--box-threshold", "2"], "--box-threshold"),
    option(["frames", "VIDEO", "--quality", "0"], "--quality"),
    option(["frames", "VIDEO", "--fps", "-1"], "--fps"),
    option(["report", ".", "--max-timelines", "-1"], "--max-timelines"),
    option(["synth", "--matches", "0"], "--matches"),
    # labels and predictions
    labels_case("labels fps NaN", "stats", ["fps"], fps=float("nan")),
    labels_case("labels fps 0", "stats", ["fps"], fps=0),
    labels_case("labels num_frames 10^30", "stats", ["num_frames"], num_frames=10 ** 30),
    labels_case("labels num_frames 10^30 (eval frames)", "eval", ["num_frames"], num_frames=10 ** 30),
    labels_case("labels event frame 10^30", "stats", ["frame"], events=[{"frame": 10 ** 30, "label": "flash"}]),
    labels_case("labels events not a list", "stats", ["events"], events={}),
    predictions_case("prediction score NaN", [{"frame": 3, "label": "flash", "score": float("nan")}], ["score"]),
    predictions_case("prediction frame 10^30", [{"frame": 10 ** 30, "label": "flash", "score": 0.5}], ["frame"]),
    # damaged files of a trained run
    damaged_run("last.json = []", pointer("last", "[]"), "resume", "checkpoint pointer"),
    damaged_run("best.json = {}", pointer("best", "{}"), "spot", "checkpoint pointer"),
    damaged_run("last.json -> ../../victim", pointer("last", '{"directory": "../../victim"}'), "resume"),
    damaged_run("best.json garbled", pointer("best", '{"directory": '), "spot", "malformed JSON"),
    damaged_run("inference.json = {}", in_checkpoint("best", "inference.json", lambda _: b"{}"), "spot", "classes"),
    damaged_run("inference.json threshold NaN", in_checkpoint(
        "best", "inference.json", lambda d: d.replace(b'"threshold": 0.01', b'"threshold": NaN')), "spot", "threshold"),
    damaged_run("model.safetensors truncated", in_checkpoint("best", "model.safetensors", half), "spot", "unreadable"),
    damaged_run("model.safetensors 4 KiB zeroed", in_checkpoint("best", "model.safetensors", zero_middle), "spot",
                "damaged"),
    damaged_run("model config.json garbled", in_checkpoint("best", "config.json", half), "spot", "malformed JSON"),
    damaged_run("training_state.safetensors truncated", in_checkpoint("last", "training_state.safetensors", half),
                "resume", "training state"),
    damaged_run("training_state.json = []", in_checkpoint("last", "training_state.json", lambda _: b"[]"), "resume",
                "training state"),
    damaged_run("metrics.csv garbled", in_run("metrics.csv", "epoch,step\nzero,one\n"), "resume", "damaged log"),
    damaged_run("steps.csv binary", in_run("steps.csv", b"\xff\xfe\x00garbage"), "resume", "damaged log"),
    damaged_run("config.yaml garbled", in_run("config.yaml", "train: [unclosed"), "resume", "malformed YAML"),
]


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, argv, code, needles", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line(name, argv, code, needles, faults_dataset, faults_run, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    context = Context(tmp_path, faults_dataset, faults_run[0])
    arguments = argv(context)
    capsys.readouterr()
    if code == 2:  # argparse refuses the option and exits
        with pytest.raises(SystemExit) as exit_info:
            main(arguments)
        got = exit_info.value.code
    else:
        got = main(arguments)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "uglspot" in lines[0] and "error" in lines[0], err
    for needle in needles(context):
        assert needle in lines[0], (needle, lines[0])


def test_an_unexpected_error_is_one_line_and_a_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import uglspot.commands.stats as stats

    def broken(args: object) -> int:
        return {}["height"]

    monkeypatch.setattr(stats, "run", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    code = main(["stats", str(tmp_path)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "internal error: KeyError" in lines[0]
    logs = list(tmp_path.glob("uglspot-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback" in text and "broken" in text and text.startswith("command: uglspot stats")
    assert os.access(logs[0], os.R_OK)


@pytest.mark.parametrize("reader, what", [
    ("uglspot.config:load_yaml", "config file (YAML)"),
    ("uglspot.data.labels:read_class_list", "class list"),
    ("uglspot.io:read_json", "JSON file"),
    ("uglspot.data.inputs:_read_list", "video list"),
])
@pytest.mark.parametrize("case", ["latin-1", "folder", "under a file", "missing"])
def test_every_text_reader_gives_one_line_naming_the_file(tmp_path, reader, what, case) -> None:
    """Non-UTF-8 configs, video lists and class files, and folders or files in
    a file's place, once ended in `internal error`."""
    import importlib

    from uglspot.errors import UserError

    module, name = reader.split(":")
    read = getattr(importlib.import_module(module), name)
    path = tmp_path / "input.txt"
    if case == "latin-1":
        path.write_bytes("équipe: 1\n".encode("latin-1"))
    elif case == "folder":
        path.mkdir()
    elif case == "under a file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "input.txt"
    with pytest.raises(UserError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    if case in ("latin-1", "folder", "missing"):
        assert what in message, message
