from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from uglspot.engine.schedule import adamw, lr_factor, set_lr
from uglspot.engine.state import (
    STATE_JSON, flatten_state, load_state, publish, remove_unpublished, resolve, save_state, unflatten_state,
)
from uglspot.errors import UserError


@pytest.mark.parametrize("step, warmup, total, expected", [
    (0, 10, 110, 0.01),
    (5, 10, 110, 0.505),
    (10, 10, 110, 1.0),
    (60, 10, 110, 0.5),
    (110, 10, 110, 0.0),
    (500, 10, 110, 0.0),  # past the end stays at zero
    (0, 0, 100, 1.0),  # no warm-up
    (25, 0, 100, 0.5 * (1 + np.cos(np.pi * 0.25))),
])
def test_lr_factor(step: int, warmup: int, total: int, expected: float) -> None:
    assert lr_factor(step, warmup, total) == pytest.approx(expected)


def test_set_lr_sets_every_group() -> None:
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": params[:1]}, {"params": params[1:]}], lr=1.0)
    assert set_lr(optimizer, 1e-3, 0.5) == pytest.approx(5e-4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-4, 5e-4])


def test_adamw_is_fused_on_the_cpu_and_updates_as_the_per_tensor_loop() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 33), torch.nn.GELU(), torch.nn.Linear(33, 3))
    twin, start = copy.deepcopy(model), copy.deepcopy(model)
    fused = adamw(model, lr=1e-2, weight_decay=0.05)
    loop = torch.optim.AdamW(twin.parameters(), lr=1e-2, weight_decay=0.05, foreach=False)
    has_cpu_kernel = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 4)
    assert bool(fused.defaults["fused"]) == has_cpu_kernel and fused.defaults["weight_decay"] == 0.05
    for _ in range(5):
        x = torch.randn(8, 7)
        for net, optimizer in ((model, fused), (twin, loop)):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    for updated, reference, initial in zip(model.parameters(), twin.parameters(), start.parameters(), strict=True):
        assert (updated - initial).abs().max() > 1e-3  # five steps of lr 1e-2 moved every parameter
        torch.testing.assert_close(updated, reference, rtol=1e-5, atol=1e-6)


def test_optimizer_state_round_trips_without_pickle(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    for _ in range(3):
        model(torch.randn(4, 3)).square().mean().backward()
        optimizer.step()
    generator = np.random.default_rng(7)
    generator.random(5)
    state = {"optimizer": optimizer.state_dict(), "numpy": generator.bit_generator.state,
             "torch_rng": torch.get_rng_state(), "step": 3, "name": None}
    save_state(state, tmp_path)
    loaded = load_state(tmp_path)

    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    fresh.load_state_dict(loaded["optimizer"])
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    for key, value in optimizer.state_dict()["state"].items():
        for name, tensor in value.items():
            assert torch.equal(fresh.state_dict()["state"][key][name], tensor), (key, name)
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded["numpy"]
    assert restored.random() == generator.random()
    assert torch.equal(loaded["torch_rng"], state["torch_rng"])
    assert loaded["torch_rng"].dtype == torch.uint8 and loaded["step"] == 3 and loaded["name"] is None
    assert b"pickle" not in (tmp_path / STATE_JSON).read_bytes()


def test_flatten_rejects_objects_it_cannot_store() -> None:
    with pytest.raises(TypeError, match="s.bad"):
        flatten_state({"bad": object()})


def test_flatten_keeps_int_keys_and_tuples() -> None:
    tensors, skeleton = flatten_state({1: (2, torch.ones(2)), "a": [1.5, "x"]})
    back = unflatten_state(skeleton, tensors)
    assert set(back) == {1, "a"} and isinstance(back[1], tuple) and back["a"] == [1.5, "x"]
    assert torch.equal(back[1][1], torch.ones(2))


def test_publish_moves_the_pointer_and_cleans_up(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    first, second, orphan = (checkpoints / f"last-e0001-s0000000{i}" for i in (1, 2, 3))
    for directory in (first, second, orphan):
        directory.mkdir(parents=True)
    with pytest.raises(UserError, match="no 'last' checkpoint"):
        resolve(checkpoints, "last")
    publish(checkpoints, "last", first)
    assert resolve(checkpoints, "last") == first
    publish(checkpoints, "best", first)
    publish(checkpoints, "last", second, keep={first})
    assert resolve(checkpoints, "last") == second and first.is_dir()  # still the best
    remove_unpublished(checkpoints)  # a killed run left the third half written
    assert not orphan.exists() and first.is_dir() and second.is_dir()


def test_load_state_explains_a_missing_state(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no training state"):
        load_state(tmp_path)
