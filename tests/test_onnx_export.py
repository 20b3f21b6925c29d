"""ONNX export (issue 24): for every registered variant, and the shifts and
entity sources it can be built with, ONNX Runtime on the CPU gives what
PyTorch gives on the same inputs (max |Δ| ≤ 1e-4 on logits, probabilities
and attention), at a batch size other than the one the export traced, with
windows that have no entity at all; the file says what it holds."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from _model_helpers import H, N, W, one_thread, open_gates  # noqa: F401  (one_thread: an autouse fixture)
from uglspot.engine.infer import InferenceSettings
from uglspot.engine.onnx_export import TRACE_BATCH, export_onnx
from uglspot.entities.batch import EntityBatch
from uglspot.model.spotter import VARIANTS, UGLSpotter, create_model

T, K, DE = 4, 3, 8
BATCH = 3  # not TRACE_BATCH: the batch dimension must be dynamic
TOLERANCE = 1e-4

# (variant, options, the entity inputs its graph must take besides frames)
def default_inputs(name: str) -> list[str]:
    """The entity inputs of a registered variant as it is: the release's layers read GLIP features alone."""
    if name.startswith("uglr"):
        return ["mask", "feat"]
    return ["mask", "boxes", "cls"] if name.startswith("ugl") else []


CASES = [(name, {}, default_inputs(name)) for name in VARIANTS] + [
    ("e2e_rny002", {"shift": "tsm"}, []),
    ("ugl_rny002", {"shift": "tsm", "entity_source": "detector"}, ["mask", "cls", "feat"]),
    ("ugl_rny002", {"entity_source": "detector", "entity_geometry": True, "loss": "ce"},  # the demo's
     ["mask", "boxes", "cls", "score", "feat"]),
    ("ugl_paper_rny002", {"shift": "tsm", "entity_source": "detector", "num_entity_classes": 0}, ["mask", "feat"]),
    ("ugl_paper_rny002", {"shift": "none", "entity_geometry": True}, ["mask", "boxes", "cls", "score"]),
]


def case_id(case: tuple) -> str:
    name, options, _ = case
    return "-".join([name, *(f"{k}={v}" for k, v in options.items())])


def awake_model(name: str, options: dict) -> UGLSpotter:
    """A tiny random model whose every path counts: GSM gates open, and
    with the recipe's head gate random, so each class picks another head."""
    torch.manual_seed(0)
    model = create_model(name, K, clip_len=T, entity_feat_dim=DE, **options)
    open_gates(model, std=0.2)
    if model.head_gate is not None:
        with torch.no_grad():
            model.head_gate.copy_(torch.randn(model.head_gate.shape) * 0.5)
    return model.eval()


def inputs(seed: int, batch: int = BATCH) -> tuple[torch.Tensor, EntityBatch]:
    """Frames and entities of ``batch`` windows; the last window holds no entity, one frame of the first none."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(batch, T, N, 2, generator=g) * 0.6
    entities = EntityBatch(boxes=torch.cat([corner, corner + 0.1 + 0.3 * torch.rand(batch, T, N, 2, generator=g)], -1),
                           cls=torch.randint(0, 6, (batch, T, N), generator=g), score=torch.rand(batch, T, N, generator=g),
                           mask=torch.rand(batch, T, N, generator=g) < 0.7, feat=torch.randn(batch, T, N, DE, generator=g))
    entities.mask[:-1, :, 0] = True
    entities.mask[0, 1] = False
    entities.mask[-1] = False
    return torch.randn(batch, T, 3, H, W, generator=g), entities


def settings() -> InferenceSettings:
    return InferenceSettings(classes=["goal", "card", "corner"], clip_len=T, fps=12.5, height=H, width=W,
                             entity_slots=N)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_onnx_runtime_matches_pytorch(case: tuple, tmp_path) -> None:
    name, options, entity_names = case
    model = awake_model(name, options)
    path = tmp_path / "model.onnx"
    written = export_onnx(model, settings(), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames", *entity_names] == written.inputs
    assert session.get_inputs()[0].shape == ["batch", T, 3, H, W]

    assert TRACE_BATCH != BATCH
    frames, entities = inputs(seed=7)
    feeds = {"frames": frames.numpy()} | {n: getattr(entities, n).numpy() for n in entity_names}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    with torch.no_grad():
        output = model(frames, entities if model.config.use_entities else None)
        want = {"logits": output.logits, "probs": model.scores(output)}
        if output.attention is not None:
            want["attention"] = output.attention
    assert set(got) == set(want)
    differences = {k: float(np.abs(got[k] - want[k].numpy()).max()) for k in want}
    print(case_id(case), {k: f"{v:.1e}" for k, v in differences.items()})  # the parity figures, with pytest -s
    assert max(differences.values()) <= TOLERANCE, differences
    assert got["logits"].shape == (BATCH, T, K + 1)
    if "attention" in got:  # the test's inputs reach the entity branch: attention where entities are
        assert got["attention"][0].max() > 0 and not got["attention"][-1].any()

    # one window, no entity anywhere in the batch (a stretch of video without detections): nothing to pack
    frames, entities = inputs(seed=8, batch=1)
    feeds = {"frames": frames.numpy()} | {n: getattr(entities, n).numpy() for n in entity_names}
    got = session.run(["probs"], feeds)[0]
    with torch.no_grad():
        want = model.scores(model(frames, entities if model.config.use_entities else None))
    assert np.abs(got - want.numpy()).max() <= TOLERANCE


def test_the_file_carries_classes_rate_window_and_normalisation(tmp_path) -> None:
    model = awake_model("ugl_rny002", {"pixel_mean": (0.5, 0.4, 0.3), "pixel_std": (0.2, 0.25, 0.3)})
    path = tmp_path / "model.onnx"
    export_onnx(model, settings(), path, source="best")
    props = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    meta = {k: json.loads(v) for k, v in props.items()}
    assert meta["classes"] == ["goal", "card", "corner"] and meta["fps"] == 12.5 and meta["clip_len"] == T
    assert (meta["frame_height"], meta["frame_width"], meta["entity_slots"]) == (H, W, N)
    assert meta["pixel_mean"] == [0.5, 0.4, 0.3] and meta["pixel_std"] == [0.2, 0.25, 0.3]
    assert meta["inputs"] == ["frames", "mask", "boxes", "cls"]
    assert meta["outputs"] == ["logits", "probs", "attention"]
    assert meta["model"] == "ugl_rny002" and meta["source"] == "best"
    assert meta["uglspot.model_config"]["entity_selection"] == "learned"
    assert meta["uglspot.inference"]["classes"] == meta["classes"]
    assert meta["probs"].startswith("sigmoid")  # the recipe with focal loss reads its mixed logits


@pytest.mark.slow
def test_the_dynamo_exporter_also_matches_pytorch(tmp_path) -> None:
    """The exporter torch makes its default (export --exporter dynamo), on the
    recipe with entities: the way on once the TorchScript tracer is gone."""
    pytest.importorskip("onnxscript")
    model = awake_model("ugl_rny002", {})
    path = tmp_path / "model.onnx"
    written = export_onnx(model, settings(), path, exporter="dynamo")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert written.inputs == [i.name for i in session.get_inputs()] == ["frames", "mask", "boxes", "cls"]
    frames, entities = inputs(seed=3)
    feeds = {"frames": frames.numpy()} | {n: getattr(entities, n).numpy() for n in written.inputs[1:]}
    logits, probs, attention = session.run(None, feeds)
    with torch.no_grad():
        output = model(frames, entities)
    assert np.abs(logits - output.logits.numpy()).max() <= TOLERANCE
    assert np.abs(probs - model.scores(output).numpy()).max() <= TOLERANCE
    assert np.abs(attention - output.attention.numpy()).max() <= TOLERANCE


def test_the_benchmark_runs_and_prints_one_json_line_per_figure(capsys) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from onnx_runtime import main

    assert main(["--frames", "4", "--height", "32", "--width", "48", "--slots", "3", "--batch", "3",
                 "--warmup", "0", "--rounds", "1", "--threads", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    speeds = {(r["model"], r["runtime"]) for r in records if r["figure"] == "onnx.infer_frames_per_s"}
    assert {("e2e_rny002", "torch"), ("e2e_rny002", "onnxruntime"), ("ugl_rny002", "onnxruntime")} <= speeds
    assert all(r["value"] <= TOLERANCE for r in records if r["figure"] == "onnx.max_abs_diff")
    assert {r["model"] for r in records if r["figure"] == "onnx.onnx_over_torch"} == {"e2e_rny002", "ugl_rny002"}
