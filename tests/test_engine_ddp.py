"""DDP through torchrun: two CPU processes with the gloo backend."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uglspot.model.spotter")
pytest.importorskip("uglspot.entities.store")
pytest.importorskip("uglspot.engine.model_folder")

from _engine_helpers import make_dataset, tiny_config  # noqa: E402

from uglspot.config import dump_yaml  # noqa: E402
from uglspot.engine.state import load_state, resolve  # noqa: E402

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_split_the_clips_and_rank_zero_writes(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", {"train": 2, "val": 2})
    run = tmp_path / "run"
    config = tiny_config(data, run, epochs=1, epoch_frames=64)  # 64 frames = 2 ranks x 2 clips x 8 frames x 2 steps
    path = tmp_path / "ddp.yaml"
    path.write_text(dump_yaml(config))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), "-m", "uglspot", "train", str(path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 1 epochs (2 steps, 0 skipped)") == 1  # rank 0 reports, alone
    state = load_state(resolve(run / "checkpoints", "last"))
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert state["rng"][0]["numpy_augment"] != state["rng"][1]["numpy_augment"]  # each rank its own stream
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["step"] == "2"
    assert 0.0 <= float(rows[0]["val_metric"]) <= 1.0  # both ranks' val videos gathered into one metric

    # resuming with another number of processes is refused with a clear message
    from uglspot.engine.config import load_run_config
    from uglspot.engine.train import train

    with pytest.raises(Exception, match="written by 2 process"):
        train(load_run_config(path, ["train.epochs=2"]), resume=True)


def test_a_job_into_a_locked_run_folder_stops_on_every_rank(tmp_path: Path) -> None:
    """Rank 0 alone takes the run folder's lock; when it is refused, every
    rank raises the same one line at once instead of waiting for rank 0."""
    data = make_dataset(tmp_path / "data", {"train": 2, "val": 2})
    run = tmp_path / "run"
    run.mkdir()
    path = tmp_path / "ddp.yaml"
    path.write_text(dump_yaml(tiny_config(data, run, epochs=1, epoch_frames=64)))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    hold = "import sys\nfrom uglspot.lock import output_lock\nwith output_lock(sys.argv[1], 'train'):\n" \
           "    print('held', flush=True)\n    sys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
             "--master_port", str(free_port()), "-m", "uglspot", "train", str(path)],
            env=env, capture_output=True, text=True, timeout=300)
    finally:
        holder.communicate("", timeout=60)
    assert result.returncode != 0
    refusal = f"uglspot train: error: {run}: in use by uglspot train (pid {holder.pid} on host"
    assert result.stderr.count(refusal) == 2, result.stderr[-3000:]  # both ranks, neither waiting for the other
    assert sorted(p.name for p in run.iterdir()) == []  # the refused job wrote nothing
