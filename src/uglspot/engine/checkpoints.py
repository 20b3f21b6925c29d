"""A training run's checkpoints: ``last`` (weights, inference settings and
the full training state: optimiser, grad scaler, progress, every rank's
random generators) and ``best`` (weights and settings), and continuing from
``last``. Each is written whole, then published (``uglspot.engine.state``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from uglspot.engine.infer import InferenceSettings, write_inference_settings
from uglspot.engine.runtime import unwrap
from uglspot.engine.schedule import schedule_notes, schedule_record
from uglspot.engine.state import (
    TRAINING_STATE_KEYS, checkpoint_dir_name, load_state, publish, resolve, save_state,
)
from uglspot.errors import UserError
from uglspot.io import own_folder

if TYPE_CHECKING:
    from uglspot.engine.train import Run


def rng_state(augment_rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy_augment": augment_rng.bit_generator.state}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], augment_rng: np.random.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    augment_rng.bit_generator.state = state["numpy_augment"]
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(run: Path, name: str, model: torch.nn.Module, progress: Any,
                    settings: InferenceSettings, training_state: dict[str, Any] | None) -> Path:
    """Write a complete checkpoint directory, then publish it as ``name``."""
    from uglspot.engine.model_folder import save_model

    checkpoints = own_folder(run / "checkpoints")
    directory = checkpoints / checkpoint_dir_name(name, progress.epoch, progress.step)
    if directory.is_symlink():
        own_folder(directory)  # refused, naming the link
    if directory.exists() and directory != resolve(checkpoints, name, missing_ok=True):
        import shutil

        shutil.rmtree(directory)
    save_model(unwrap(model), directory)
    write_inference_settings(directory, settings)
    if training_state is not None:
        save_state(training_state, directory)
    others = {resolve(checkpoints, other, missing_ok=True) for other in ("last", "best") if other != name}
    publish(checkpoints, name, directory, keep={p for p in others if p is not None})
    return directory


def checkpoint_last(run: Run) -> None:
    """Save ``last`` with the full training state (collective: every rank takes part)."""
    states = run.dist.gather(rng_state(run.augment_rng, run.device))  # every rank's, so each resumes its own
    state = {"optimizer": run.optimizer.state_dict(), "scaler": run.scaler.state_dict(),
             "progress": asdict(run.progress), "rng": states, "world_size": run.dist.world_size,
             "schedule": schedule_record(run.config, run.steps_per_epoch)}
    if run.dist.is_main:
        save_checkpoint(Path(run.config.out), "last", run.ddp, run.progress, run.settings, state)


def restore(run: Run) -> None:
    """Continue from the ``last`` checkpoint of the run directory."""
    from uglspot.engine.model_folder import load_model

    last = resolve(Path(run.config.out) / "checkpoints", "last")
    run.model.load_state_dict(load_model(last, map_location="cpu").state_dict())
    state = load_state(last, required=TRAINING_STATE_KEYS)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    if state["world_size"] != run.dist.world_size:
        raise UserError(f"{last}: written by {state['world_size']} process(es), resumed with "
                        f"{run.dist.world_size}; resume with the same number so every rank redraws its clips")
    run.progress = type(run.progress)(**state["progress"])
    restore_rng(state["rng"][run.dist.rank], run.augment_rng, run.device)
    run.saved_schedule = state.get("schedule")  # absent in checkpoints written before it was saved


def resume_message(run: Run) -> str:
    """Where a resumed run goes on from (epochs count from 1, as in the bars and metrics.csv)."""
    progress, epochs = run.progress, run.config.train.epochs
    where = f"resuming {run.config.out} from step {progress.step}"
    if progress.epoch >= epochs:
        return (f"{where}: all {epochs} epochs are done, nothing to train; raise train.epochs "
                f"(--set train.epochs=N) to train longer")
    done = progress.batch // run.config.optim.accumulate
    return (f"{where}, epoch {progress.epoch + 1}/{epochs}"
            + (f" ({done} of its {run.steps_per_epoch} steps done)" if done else " (from its start)"))


def start_messages(run: Run, resume: bool) -> list[str]:
    """The lines a run states before its first step: where a resumed run goes
    on, then what its learning-rate schedule does that the config does not
    make plain (``uglspot.engine.schedule.schedule_notes``)."""
    lines = [resume_message(run)] if resume else []
    if run.progress.epoch >= run.config.train.epochs:  # nothing left to train
        return lines
    record = schedule_record(run.config, run.steps_per_epoch)
    return lines + schedule_notes(record, run.progress.step, run.saved_schedule if resume else None)
