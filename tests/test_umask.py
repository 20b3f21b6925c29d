"""Every file uglspot writes gets the permissions of the umask, as a plain
write would (issue 21): ``.safetensors`` files (model, training state,
entity stores) included, whose library used to leave them 0600 whatever the
umask. Checked under umask 002 (a team sharing runs) and 022."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from uglspot.io import save_tensors


@pytest.fixture(params=[0o002, 0o022], ids=["umask002", "umask022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, str]:
    """Every file and folder below ``root`` with its permission bits."""
    return {str(path.relative_to(root)): oct(path.stat().st_mode & 0o777) for path in sorted(root.rglob("*"))}


def expected(root: Path, umask: int) -> dict[str, str]:
    return {str(path.relative_to(root)): oct((0o777 if path.is_dir() else 0o666) & ~umask)
            for path in sorted(root.rglob("*"))}


def test_safetensors_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    save_tensors({"w": torch.zeros(3)}, tmp_path / "torch.safetensors")
    save_tensors({"w": np.zeros(3, np.float32)}, tmp_path / "numpy.safetensors")
    assert modes(tmp_path) == expected(tmp_path, umask)


def test_a_rewritten_file_keeps_its_own_mode(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "model.safetensors"
    save_tensors({"w": torch.zeros(3)}, path)
    path.chmod(0o640)  # as with open(path, "w"): an existing file keeps the mode its owner gave it
    save_tensors({"w": torch.ones(3)}, path)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.slow
def test_every_file_of_a_dataset_and_a_training_run_follows_the_umask(tmp_path: Path, umask: int) -> None:
    """Entity stores, labels and videos, then a run: config, logs, checkpoints
    with their model and training-state safetensors."""
    from _engine_helpers import make_dataset, tiny_config

    from uglspot.engine.train import train

    data = make_dataset(tmp_path / "data", {"train": 1, "val": 1})
    train(tiny_config(data, tmp_path / "run", epochs=1, checkpoint_every=1))
    written = modes(tmp_path)
    assert any(name.endswith(".safetensors") for name in written if name.startswith("data"))  # entity stores
    assert sum(name.endswith(".safetensors") for name in written if name.startswith("run")) >= 3  # best, last, state
    assert written == expected(tmp_path, umask)
