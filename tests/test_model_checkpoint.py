"""Model folders (safetensors + config.json) and foreign .pt files."""

from __future__ import annotations

import json

import pytest
import torch

from _model_helpers import TINY, one_thread, open_gates, tiny_inputs  # noqa: F401  (one_thread: autouse fixture)
from uglspot.engine.model_folder import (
    load_foreign_checkpoint, load_model, load_model_metadata, save_model)
from uglspot.errors import UserError
from uglspot.model import create_model


@pytest.mark.parametrize("name", ["ugl_rny002", "e2e_rny002"])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name, 3, **TINY, focal_alpha=0.5)
    open_gates(model)
    x, entities = tiny_inputs()
    model.train()
    model(x, entities)  # move BatchNorm running statistics away from their init
    model.eval()
    save_model(model, tmp_path / "m", metadata={"classes": ["a", "b", "c"]})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m").eval()
    assert loaded.config == model.config
    assert load_model_metadata(tmp_path / "m") == {"classes": ["a", "b", "c"]}
    with torch.no_grad():
        a, b = model(x, entities), loaded(x, entities)
    assert torch.equal(a.logits, b.logits)
    if a.attention is not None:
        assert torch.equal(a.attention, b.attention)


def test_save_unwraps_compiled_models(tmp_path):
    model = create_model("e2e_rny002", 2, **TINY)
    save_model(torch.compile(model), tmp_path / "m")
    assert load_model(tmp_path / "m").config == model.config


def test_load_refuses_weights_that_do_not_fit(tmp_path):
    save_model(create_model("e2e_rny002", 2, **TINY), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model"]["num_classes"] = 5
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="of another shape \\(e.g. head.fc"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["model"].update(entity_slotz=3), "unknown key\\(s\\) entity_slotz"),
    (lambda c: c.update(format="something"), "not an uglspot model config"),
    (lambda c: c.update(version=99), "format version 99"),
])
def test_load_refuses_bad_configs(tmp_path, edit, message):
    save_model(create_model("e2e_rny002", 2, **TINY), tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=message):
        load_model(tmp_path / "m")


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match="model folder not found"):
        load_model(tmp_path / "nothing")
    save_model(create_model("e2e_rny002", 2, **TINY), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="unreadable model weights"):
        load_model(tmp_path / "m")


def test_foreign_checkpoint_reads_tensors_and_refuses_pickled_code(tmp_path):
    torch.save({"a.weight": torch.ones(2)}, tmp_path / "plain.pt")
    assert torch.equal(load_foreign_checkpoint(tmp_path / "plain.pt")["a.weight"], torch.ones(2))
    torch.save({"state_dict": {"b": torch.zeros(1)}, "epoch": 3}, tmp_path / "nested.pt")
    assert list(load_foreign_checkpoint(tmp_path / "nested.pt")) == ["b"]
    torch.save({"w": torch.zeros(1), "hook": print}, tmp_path / "code.pt")
    with pytest.raises(UserError, match="refuses"):
        load_foreign_checkpoint(tmp_path / "code.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint|refuses"):
        load_foreign_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.zeros(1), "epoch": 3}, tmp_path / "mixed.pt")
    with pytest.raises(UserError, match="'epoch' is not one"):
        load_foreign_checkpoint(tmp_path / "mixed.pt")
