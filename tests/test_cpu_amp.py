"""Mixed precision on CPU: fp32 unless bf16 is asked for on a CPU that runs
it natively; a bf16 run trains through the real engine."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from uglspot.engine import runtime
from uglspot.engine.runtime import amp_mode
from uglspot.errors import UserError

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bf16", [True, False])
@pytest.mark.parametrize("mode, expected", [("off", None), ("auto", None), ("bf16", torch.bfloat16)])
def test_cpu_amp_table(monkeypatch: pytest.MonkeyPatch, has_bf16: bool, mode: str, expected) -> None:
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has_bf16)
    if mode == "bf16" and not has_bf16:
        with pytest.raises(UserError, match="no native bf16.*train.amp=off"):
            amp_mode(mode, CPU)
    else:
        assert amp_mode(mode, CPU) == (expected, False)


def test_fp16_on_cpu_is_an_error_naming_the_modes_that_work() -> None:
    with pytest.raises(UserError, match="fp16 needs a CUDA device; use train.amp=bf16, auto or off"):
        amp_mode("fp16", CPU)


@pytest.mark.slow
@pytest.mark.skipif(not runtime.cpu_has_bf16(), reason="this CPU has no native bf16")
def test_a_bf16_run_on_cpu_trains_and_its_loss_falls(tmp_path: Path) -> None:
    """Six epochs: the mean loss of the last third of the steps over that of
    the first third was 0.24-0.58 on seeds 0-4. Three epochs were too few
    (0.91 on seed 0, 1.35 on seed 1), and a fresh clone's run, rounding a
    little differently, failed there."""
    import csv

    from _engine_helpers import make_dataset, tiny_config

    from uglspot.engine.train import train

    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "run"
    train(tiny_config(data, out, amp="bf16", epochs=6, epoch_frames=96, val_every=6))
    with open(out / "steps.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert all(math.isfinite(v) for v in losses)
    third = max(1, len(losses) // 3)
    assert sum(losses[-third:]) / third < sum(losses[:third]) / third
