"""`uglspot export` and `uglspot spot --runtime onnx` (issue 24): a trained
run exports to one ONNX file, spotting with it through ONNX Runtime finds
the events PyTorch finds, and every bad input gets one line and a non-zero
exit without touching what the user had."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from _engine_helpers import CLASSES, FPS, link_copy, render, saved_global_model, write_video
from test_cli_messages import message_problems
from uglspot.cli import main
from uglspot.data.labels import Event
from uglspot.engine.model_folder import save_model
from uglspot.io import write_json_atomic
from uglspot.model.spotter import create_model


def refused(argv: list[str], capsys: pytest.CaptureFixture, *expected: str) -> str:
    """Run ``uglspot ARGV``: exit 1 and one error line on stderr (spot's notes
    may come before it) holding ``expected``, whose options and quoted
    commands are those of the CLI."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("uglspot ")]
    assert len(errors) == 1 and errors[0] == err.splitlines()[-1] and "Traceback" not in err, err
    for text in expected:
        assert text in errors[0], err
    assert not message_problems(argv, errors[0]), message_problems(argv, errors[0])
    return errors[0]


def events(folder: Path, video: str) -> list[dict]:
    return json.loads((folder / video / "events.json").read_text())["events"]


def test_a_trained_run_spots_the_same_events_with_onnx_runtime(faults_dataset, faults_run, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    run = link_copy(faults_run[0], tmp_path / "run")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {run / 'model.onnx'}" in printed and "inputs frames, mask, boxes, cls" in printed
    assert "ONNX Runtime vs PyTorch" in printed

    video = faults_dataset.splits["test"][0].video
    common = [str(faults_dataset.videos / f"{video}.mp4"), "--entities", str(faults_dataset.entities),
              "--threshold", "0", "--no-plot"]
    assert main(["spot", *common, "--model", str(run), "--device", "cpu", "--out", str(tmp_path / "torch")]) == 0
    assert main(["spot", *common, "--model", str(run), "--runtime", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    assert main(["spot", *common, "--model", str(run / "model.onnx"), "--out", str(tmp_path / "file")]) == 0
    reference, onnx = events(tmp_path / "torch", video), events(tmp_path / "onnx", video)
    assert len(reference) > 10  # threshold 0: every peak of every class, a demanding comparison
    assert [(e["frame"], e["label"]) for e in onnx] == [(e["frame"], e["label"]) for e in reference]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(onnx, reference)) <= 1e-4
    # each event's most-attended entities: the attention came out of the graph too
    assert [[(x["class"], x["box"]) for x in e["entities"]] for e in onnx] == \
        [[(x["class"], x["box"]) for x in e["entities"]] for e in reference]
    assert max(abs(x["weight"] - y["weight"]) for a, b in zip(onnx, reference)
               for x, y in zip(a["entities"], b["entities"])) <= 2e-4  # weights are written to 4 decimals
    assert any(e["entities"] for e in reference)
    assert events(tmp_path / "file", video) == onnx  # the .onnx file alone: same settings, same events


def test_export_needs_a_frame_size_for_an_aspect_keeping_model_and_never_overwrites(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = saved_global_model(tmp_path / "model")
    refused(["export", str(model)], capsys, "--frame-size WIDTHx32")
    assert not (model / "model.onnx").exists()

    out = tmp_path / "exported" / "spotter.onnx"
    assert main(["export", str(model), "--frame-size", "48x32", "--out", str(out), "--no-check"]) == 0
    assert "windows of 8 frames of 48x32" in capsys.readouterr().out
    before = out.read_bytes()
    refused(["export", str(model), "--frame-size", "48x32", "--out", str(out)], capsys, str(out), "--overwrite")
    assert out.read_bytes() == before
    out.write_bytes(b"the user's own file")
    assert main(["export", str(model), "--frame-size", "48x32", "--out", str(out), "--overwrite", "--no-check"]) == 0
    assert out.read_bytes() == before  # the same model exports to the same bytes

    # spot decodes these videos at 48x32: a file exported for another size says what to do, per video
    write_video(tmp_path / "videos" / "clip.mp4", render(20, [Event(5, "flash")], seed=3))
    wide = tmp_path / "wide.onnx"
    assert main(["export", str(model), "--frame-size", "64x32", "--out", str(wide), "--no-check"]) == 0
    refused(["spot", str(tmp_path / "videos"), "--model", str(wide), "--out", str(tmp_path / "s")], capsys,
            "clip", "exported for windows of 8 frames of 64x32", "`uglspot export RUN --frame-size 48x32 ")


@pytest.mark.parametrize("argv, expected", [
    (lambda tmp: ["export", str(tmp / "missing")], "no such folder"),
    (lambda tmp: ["export", str(tmp)], "neither a model directory"),
    (lambda tmp: ["export", str(tmp / "model"), "--frame-size", "48x24"], "drop --frame-size"),
    (lambda tmp: ["export", str(tmp / "model"), "--out", str(tmp)], "is a folder"),
    (lambda tmp: ["spot", str(tmp / "videos"), "--model", str(tmp / "model"), "--runtime", "onnx",
                  "--out", str(tmp / "s")], "no model.onnx here"),
    (lambda tmp: ["spot", str(tmp / "videos"), "--model", str(tmp / "junk.onnx"), "--out", str(tmp / "s")],
     "not an ONNX model ONNX Runtime can load"),
    (lambda tmp: ["spot", str(tmp / "videos"), "--model", str(tmp / "plain.onnx"), "--out", str(tmp / "s")],
     "without uglspot's metadata"),
    (lambda tmp: ["spot", str(tmp / "videos"), "--model", str(tmp / "plain.onnx"), "--runtime", "torch",
                  "--out", str(tmp / "s")], "drop --runtime torch"),
])
def test_bad_inputs_get_one_line(argv, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import onnx
    from onnx import TensorProto, helper

    torch.manual_seed(0)
    save_model(create_model("e2e_rny002", 2, clip_len=8), tmp_path / "model")
    write_json_atomic(tmp_path / "model" / "inference.json", {
        "classes": CLASSES, "fps": FPS, "height": 32, "width": 48, "crop": None, "clip_len": 8, "pad": 2,
        "threshold": 0.01, "nms_window": 1, "batch_size": 2, "entities_per_event": 3})
    write_video(tmp_path / "videos" / "clip.mp4", render(12, [], seed=1))
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf" * 8)
    x = helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["frames"], ["logits"])], "g", [x], [y])),
              str(tmp_path / "plain.onnx"))
    refused(argv(tmp_path), capsys, expected)


@pytest.mark.parametrize("missing, argv", [
    ("onnx", lambda tmp: ["export", str(tmp / "model")]),
    ("onnxruntime", lambda tmp: ["export", str(tmp / "model")]),
    ("onnxruntime", lambda tmp: ["spot", str(tmp / "videos"), "--model", str(tmp / "model.onnx"), "--out",
                                 str(tmp / "s")]),
])
def test_without_the_onnx_packages_the_error_names_the_pip_command(
        missing: str, argv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    saved_global_model(tmp_path / "model")
    (tmp_path / "model.onnx").write_bytes(b"never read")
    write_video(tmp_path / "videos" / "clip.mp4", render(12, [], seed=1))
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    refused(argv(tmp_path), capsys, f"needs the {missing} package", "pip install 'uglspot[onnx]'")


def test_the_docs_read_an_exported_file_without_uglspot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    """docs/export.md's Python block, as written, on a model that takes every entity input."""
    import re

    from uglspot.engine.infer import InferenceSettings
    from uglspot.engine.onnx_export import export_onnx

    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    assert "uglspot" not in block.replace('"uglspot.model_config"', "")  # nothing of uglspot is imported
    torch.manual_seed(0)
    model = create_model("ugl_rny002", 3, clip_len=4, entity_source="detector", entity_feat_dim=8,
                         entity_geometry=True)
    written = export_onnx(model, InferenceSettings(classes=["goal", "card", "corner"], clip_len=4, fps=8.0,
                                                   height=32, width=48, entity_slots=3), tmp_path / "model.onnx")
    assert written.inputs == ["frames", "mask", "boxes", "cls", "score", "feat"]
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    exec(compile(block, "docs/export.md", "exec"), {})
    printed = eval(capsys.readouterr().out)  # the most likely class of each of the window's frames
    assert len(printed) == 4 and set(printed) <= {"goal", "card", "corner"}
