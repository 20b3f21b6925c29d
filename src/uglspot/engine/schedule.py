"""The optimiser, and its learning-rate schedule: linear warm-up from a small
fraction, then cosine to zero.

Stepped once per optimiser step. The schedule is a pure function of the step,
so the only state a resumed run needs is the step counter; what shaped it
(:func:`schedule_record`) is saved with each checkpoint so that a resume that
reshapes it can say so (:func:`schedule_notes`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from uglspot.engine.config import RunConfig


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters, with PyTorch's fused kernel where
    their device has one (CUDA, and the CPU since torch 2.4): one pass over
    each parameter instead of a chain of element-wise operations, each
    reading and writing the whole tensor. Element by element it computes
    the same update up to rounding. Elsewhere the plain per-tensor loop."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # a device (or torch) without the fused kernel
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def lr_factor(step: int, warmup_steps: int, total_steps: int, start_factor: float = 0.01) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if step < warmup_steps:
        return start_factor + (1.0 - start_factor) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    """Set every parameter group's learning rate; returns the new rate."""
    lr = base_lr * factor
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def schedule_record(config: RunConfig, steps_per_epoch: int) -> dict[str, Any]:
    """What shapes a run's schedule, by the names a user sets them with."""
    return {"train.epochs": config.train.epochs, "optim.warmup_epochs": config.optim.warmup_epochs,
            "optim.warmup_start": config.optim.warmup_start, "optim.lr": config.optim.lr,
            "steps per epoch": steps_per_epoch}


def schedule_factor(record: dict[str, Any], step: int) -> float:
    """The multiplier of the base rate at optimiser step ``step`` of the schedule ``record`` describes."""
    per_epoch = record["steps per epoch"]
    warmup_steps = round(record["optim.warmup_epochs"] * per_epoch)
    return lr_factor(step, warmup_steps, per_epoch * record["train.epochs"], record["optim.warmup_start"])


def scheduled_lr(record: dict[str, Any], step: int) -> float:
    return record["optim.lr"] * schedule_factor(record, step)


def schedule_notes(record: dict[str, Any], step: int, saved: dict[str, Any] | None = None) -> list[str]:
    """One line each for what a user would not guess from the config: a warm-up
    that covers the whole run (the rate never decays), and a resume at
    ``step`` whose schedule differs from the one ``saved`` with the run's
    checkpoint (the rate jumps)."""
    notes = []
    epochs, warmup = record["train.epochs"], record["optim.warmup_epochs"]
    per_epoch = record["steps per epoch"]
    if round(warmup * per_epoch) >= per_epoch * epochs:
        notes.append(f"optim.warmup_epochs={warmup:g} covers all train.epochs={epochs}: the learning rate only "
                     f"warms up (to {scheduled_lr(record, per_epoch * epochs - 1):.2g} at the last step) and "
                     f"never decays; set optim.warmup_epochs below {epochs} "
                     f"(e.g. --set optim.warmup_epochs={max(epochs * 0.1, 0.1):g}) for the cosine decay")
    if saved is not None and set(saved) == set(record) and saved != record:
        changed = ", ".join(f"{key} {saved[key]:g} → {record[key]:g}" for key in record if saved[key] != record[key])
        before, after = scheduled_lr(saved, step), scheduled_lr(record, step)
        notes.append(f"the learning-rate schedule changed on resume ({changed}): at step {step} the rate goes "
                     f"from {before:.2g} to {after:.2g}, as if the run had used the new schedule from its start")
    return notes
