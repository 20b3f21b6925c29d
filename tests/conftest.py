from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_LABELS = Path(os.environ.get("UGLSPOT_SHARED", REPO.parent / "shared")) / "data" / "labels"


@pytest.fixture(scope="session")
def shared_labels() -> Path:
    """The real label files of six datasets (read-only), beside the repository."""
    if not SHARED_LABELS.is_dir():
        pytest.skip(f"real label files not found at {SHARED_LABELS}; set UGLSPOT_SHARED")
    return SHARED_LABELS


@pytest.fixture(scope="session")
def faults_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A tiny labelled dataset (real videos, labels, entity stores) for the
    fault-injection and bad-input tests."""
    import torch
    from _engine_helpers import make_dataset

    torch.set_num_threads(1)  # no OpenMP pool in this process, so the fault tests may fork
    return make_dataset(tmp_path_factory.mktemp("faults"), {"train": 2, "val": 1, "test": 1})


FAULTS_RUN = dict(epochs=2, checkpoint_every=2)  # 3 optimiser steps per epoch: checkpoints at steps 2, 3, 4, 6


@pytest.fixture(scope="session")
def faults_run(faults_dataset, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted tiny run on ``faults_dataset``: (run directory, final RunPosition)."""
    from _engine_helpers import tiny_config

    from uglspot.engine.train import train

    run = tmp_path_factory.mktemp("whole") / "run"
    return run, train(tiny_config(faults_dataset, run, **FAULTS_RUN))
