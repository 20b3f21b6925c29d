"""What a training run writes as it goes: ``metrics.csv`` (one row per
epoch), ``steps.csv`` (loss, lr and speed every ``log_every`` steps) and
TensorBoard events when available."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from uglspot.errors import UserError, brief
from uglspot.io import write_text_atomic


class RunLog:
    """``metrics.csv`` per epoch, ``steps.csv`` per log interval, optional
    TensorBoard; written by rank 0 only. Their ``epoch`` column counts from 1,
    as the progress bars and messages do. On resume, rows past the
    checkpoint (``epochs_done``, ``step``) are dropped so the files read as
    one uninterrupted run."""

    METRICS = ["epoch", "step", "train_loss", "lr", "bad_steps", "val_metric", "train_frames_per_s", "seconds"]
    STEPS = ["step", "epoch", "loss", "lr", "frames_per_s"]

    def __init__(self, run: Path, enabled: bool, epochs_done: int, step: int, tensorboard: bool):
        self.enabled = enabled
        self.metrics = run / "metrics.csv"
        self.steps = run / "steps.csv"
        self.writer = None
        if not enabled:
            return
        self._truncate(self.metrics, self.METRICS, lambda row: int(row["epoch"]) <= epochs_done)
        self._truncate(self.steps, self.STEPS, lambda row: int(row["step"]) <= step)
        if tensorboard:
            with contextlib.suppress(ImportError):
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=step)

    @staticmethod
    def _truncate(path: Path, columns: list[str], keep: Callable[[dict[str, str]], bool]) -> None:
        rows = []
        try:
            if path.is_file():
                with open(path, newline="", encoding="utf-8") as handle:
                    rows = [row for row in csv.DictReader(handle) if keep(row)]
            lines = [",".join(columns)] + [",".join(row[c] for c in columns) for row in rows]
        except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error) as exc:
            raise UserError(f"{path}: damaged log ({type(exc).__name__}: {brief(exc, 80)}); repair it, or move it "
                            "away to resume with a fresh log") from None
        write_text_atomic(path, "\n".join(lines) + "\n")

    @staticmethod
    def _append(path: Path, values: list[Any]) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
                                  for v in values) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def step(self, step: int, epoch: int, loss: float, lr: float, frames_per_s: float) -> None:
        if self.enabled:
            self._append(self.steps, [step, epoch, loss, lr, frames_per_s])
            if self.writer is not None:
                self.writer.add_scalar("train/loss", loss, step)
                self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, row: dict[str, Any]) -> None:
        if self.enabled:
            self._append(self.metrics, [row[c] for c in self.METRICS])
            if self.writer is not None and row["val_metric"] is not None:
                self.writer.add_scalar("val/metric", row["val_metric"], row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class StepMeter:
    """Losses and timing of an epoch and of the current log interval, kept
    on the device so the loop syncs with the host once per logged step."""

    def __init__(self, device: torch.device, epoch_loss: float, interval_loss: float = 0.0,
                 interval_good: int = 0, interval_steps: int = 0):
        """``epoch_loss`` and the ``interval_*`` counts: what a resumed run had
        accumulated before its checkpoint (0 at an epoch's start)."""
        self.device = device
        self.step_loss = torch.zeros((), device=device)  # of the micro-batches of this step
        self.epoch_loss = torch.tensor(epoch_loss, device=device)
        self.started = time.perf_counter()
        self.epoch_steps = 0
        self._reset_interval()
        self.interval_loss = torch.tensor(interval_loss, device=device)
        self.interval_good, self.interval_steps = interval_good, interval_steps

    def _reset_interval(self) -> None:
        self.interval_loss, self.interval_good, self.interval_steps = torch.zeros((), device=self.device), 0, 0
        self.timed_steps = 0  # steps of the interval taken by this process (the rate's numerator)
        self.interval_start = time.perf_counter()

    def end_step(self, finite: bool) -> None:
        """Count the step's loss (when finite) and start the next step."""
        if finite:
            self.epoch_loss = self.epoch_loss + self.step_loss
            self.interval_loss = self.interval_loss + self.step_loss
            self.interval_good += 1
        self.step_loss = torch.zeros((), device=self.device)
        self.interval_steps += 1
        self.timed_steps += 1
        self.epoch_steps += 1

    def open_interval(self) -> tuple[float, int, int]:
        """(loss sum, finite steps, steps) of the interval not logged yet."""
        return float(self.interval_loss), self.interval_good, self.interval_steps

    def interval(self, frames_per_step: int) -> tuple[float, float]:
        """(mean finite loss, frames per second) since the last call."""
        seconds = time.perf_counter() - self.interval_start
        fps = self.timed_steps * frames_per_step / max(seconds, 1e-9)
        loss = (self.interval_loss / self.interval_good).item() if self.interval_good else math.nan
        self._reset_interval()
        return loss, fps

    def seconds(self) -> float:
        return time.perf_counter() - self.started
