"""Taking a global-only run from a UGL run (``uglspot.engine.global_only``)
is refused, in one line and before anything is written, where the UGL
run's global path did not train as the global-only model would have.
That the weights it writes are the trained ones, byte for byte:
``tests/test_demo.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from uglspot.app.demo import GLOBAL, QUICK, UGL, _train_config
from uglspot.engine.checkpoints import save_checkpoint
from uglspot.engine.global_only import global_path_state, write_global_only_run
from uglspot.engine.infer import InferenceSettings
from uglspot.engine.train import RunPosition
from uglspot.errors import UserError
from uglspot.model import create_model


def _configs(root):
    return _train_config(root, UGL, QUICK), _train_config(root, GLOBAL, QUICK)


@pytest.mark.parametrize("section, change, named", [
    ("train", {"seed": 1}, "seed"),
    ("data", {"foreground": 0.0}, "foreground"),
    ("optim", {"lr": 1e-4}, "lr"),
])
def test_a_global_only_run_that_would_have_trained_otherwise_is_refused(tmp_path, section, change, named):
    ugl, config = _configs(tmp_path)
    config = replace(config, **{section: replace(getattr(config, section), **change)})
    with pytest.raises(UserError, match=f"{section} settings differ from the UGL run's \\({named}\\)"):
        write_global_only_run(ugl, config)
    assert not (tmp_path / "runs").exists()


def test_a_run_that_validates_before_its_last_epoch_is_refused(tmp_path):
    ugl, config = _configs(tmp_path)
    ugl, config = (replace(c, train=replace(c.train, val_every=1)) for c in (ugl, config))
    with pytest.raises(UserError, match="best epoch is its own"):
        write_global_only_run(ugl, config)


def test_a_ugl_model_whose_global_path_is_not_isolated_is_refused(tmp_path):
    ugl, config = _configs(tmp_path)
    torch.manual_seed(0)
    model = create_model("ugl_paper_rny002", 7, clip_len=8, entity_slots=4, global_head=True)  # not isolated
    settings = InferenceSettings(classes=[str(i) for i in range(7)], clip_len=8)
    save_checkpoint(tmp_path / "runs" / UGL, "last", model, RunPosition(epoch=2, step=20), settings, None)
    with pytest.raises(UserError, match="without isolate_global"):
        write_global_only_run(ugl, config)
    assert not (tmp_path / "runs" / GLOBAL).exists()


def test_the_global_path_is_named_as_in_the_global_only_model():
    torch.manual_seed(0)
    ugl = create_model("ugl_rny002", 3, clip_len=8, entity_slots=4)
    state = global_path_state(ugl)
    expected = create_model("e2e_rny002", 3, clip_len=8).state_dict()
    assert state.keys() == expected.keys()
    assert all(state[k].shape == v.shape for k, v in expected.items())
    with pytest.raises(UserError, match="no global head"):
        global_path_state(create_model("ugl_paper_rny002", 3, clip_len=8, entity_slots=4))
