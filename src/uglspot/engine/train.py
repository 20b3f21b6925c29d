"""The training loop: configuration in, checkpoints and logs out.

Read it top to bottom: :func:`train` sets up the processes, :func:`setup`
builds data, model and optimiser (and restores a checkpoint), then per epoch
:func:`train_epoch` draws the clips and runs the step, data → augment →
forward → loss → backward → (every ``accumulate`` batches) clip, step,
schedule. Checkpoints, validation and logs hang off the loop as small
functions called at step and epoch ends (:func:`end_step`, :func:`end_epoch`).

A run directory holds ``config.yaml`` (resolved), ``metrics.csv`` and
``steps.csv`` (``uglspot.engine.log``), ``checkpoints/{last,best}.json``
pointing at complete checkpoint directories (``model.safetensors`` +
``config.json`` + ``inference.json``, and for ``last`` the training state),
and TensorBoard events when available.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Literal, Sequence

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from uglspot.data.augment import ClipAugment, normalize
from uglspot.data.clips import epoch_clips
from uglspot.data.dataset import ClipDataset, EntityWindows, FrameSource, entity_batch
from uglspot.engine.config import RunConfig, check_run_config, saved_config_text
from uglspot.engine.infer import InferenceModel, InferenceSettings, inference_settings, validation_predictions
from uglspot.engine.log import RunLog, StepMeter
from uglspot.engine.preflight import check_training
from uglspot.engine.checkpoints import checkpoint_last, restore, save_checkpoint, start_messages
from uglspot.engine.runtime import (
    OOM_ADVICE, Distributed, amp_mode, bad_batch_error, main_rank_lock, shard, unwrap,
)
from uglspot.engine.schedule import adamw, schedule_factor, schedule_record, set_lr
from uglspot.engine.sources import Splits, frame_source, load_splits
from uglspot.engine.state import remove_unpublished, resolve
from uglspot.errors import UserError
from uglspot.io import write_text_atomic


@dataclass
class RunPosition:
    """Where a run is (epoch, step, losses so far, best metric); saved with every checkpoint as ``progress``."""
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # micro-batches of this epoch already consumed on each rank
    step: int = 0  # optimiser iterations so far (skipped ones included; the schedule follows them)
    bad_in_row: int = 0  # consecutive non-finite steps
    bad_total: int = 0
    epoch_loss: float = 0.0  # sum of this epoch's finite step losses
    epoch_good: int = 0  # and their number
    # The log interval still open at a mid-epoch checkpoint (the steps since the last steps.csv row),
    # so that a resumed run logs the row it would have logged without the kill.
    interval_loss: float = 0.0
    interval_good: int = 0
    interval_steps: int = 0
    best: float | None = None  # best validation metric so far
    best_epoch: int | None = None


class StopTraining(Exception):
    """A hook raises this to end a run at once (tests use it to simulate a kill)."""


Hook = Callable[[RunPosition, Literal["step", "epoch"]], None]  # called after each step, and after each epoch


@dataclass
class Run:
    """Everything one training process holds."""
    config: RunConfig
    dist: Distributed
    device: torch.device
    splits: Splits
    frames: FrameSource
    entities: EntityWindows | None
    model: torch.nn.Module  # the spotter itself
    ddp: torch.nn.Module  # the model, wrapped for DDP when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    augment: ClipAugment
    augment_rng: np.random.Generator
    settings: InferenceSettings
    steps_per_epoch: int
    progress: RunPosition = field(default_factory=RunPosition)
    saved_schedule: dict[str, Any] | None = None  # the schedule of the checkpoint a resume starts from
    log: RunLog | None = None

    @property
    def per_step(self) -> int:
        """Clips per optimiser step on one rank."""
        return self.config.train.batch_size * self.config.optim.accumulate

    def frames_per_step(self) -> int:
        return self.per_step * self.dist.world_size * self.config.data.clip_len


def build_model(config: RunConfig, num_classes: int, init: bool = True) -> torch.nn.Module:
    from uglspot.engine.model_folder import load_init_weights  # model.init's weights (a resumed run has its own)
    from uglspot.model.spotter import create_model

    options = {"clip_len": config.data.clip_len, "entity_slots": config.data.entity_slots,
               **config.model.options, **({"pretrained": False} if config.model.init else {})}  # init replaces them
    model = create_model(config.model.name, num_classes, **options)
    if init and config.model.init:
        load_init_weights(model, config.model.init)
    if model.config.use_entities and not config.data.entities:
        raise UserError(f"model {config.model.name!r} uses entities but data.entities is not set; set it to an "
                        "entity store folder, or --set model.options.use_entities=false")
    return model


def train(config: RunConfig, resume: bool = False, hooks: Sequence[Hook] = (),
          set_keys: Collection[str] = ()) -> RunPosition:
    """Train ``config``; with ``resume`` continue the run in ``config.out`` from its last checkpoint.
    Everything that can be checked up front is checked first (``uglspot.engine.preflight``; ``set_keys``:
    the keys given with ``--set``), before the run directory is touched."""
    check_run_config(config)
    dist = Distributed.from_env()
    checked = check_training(config, dist, set_keys)
    device = checked.device
    if dist.enabled and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.train.deterministic or deterministic)
    try:  # one run per folder: a second `train` into it is refused while this one runs
        with main_rank_lock(dist, config.out, "train --resume" if resume else "train"):
            run = setup(config, resume, dist, device, checked.entity_settings)
            if dist.is_main:  # where a resumed run goes on, and a schedule the config does not make plain
                from uglspot.progress import note

                for line in start_messages(run, resume):
                    note(line)
            for epoch in range(run.progress.epoch, config.train.epochs):
                steps, seconds = train_epoch(run, epoch, hooks)
                end_epoch(run, epoch, steps / max(seconds, 1e-9) * run.frames_per_step(), seconds, hooks)
            run.log.close()
            if dist.enabled:
                torch_dist.barrier()
            return run.progress
    except torch.OutOfMemoryError:
        raise UserError(OOM_ADVICE) from None
    finally:
        torch.use_deterministic_algorithms(deterministic)
        if dist.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def setup(config: RunConfig, resume: bool, dist: Distributed, device: torch.device,
          entity_settings: dict[str, Any]) -> Run:
    """Data, model, optimiser and logs of a run; the checkpoint's state when resuming.
    ``entity_settings``: the detection settings of the checked entity stores."""
    out, cfg = Path(config.out), config.train
    if not resume and resolve(out / "checkpoints", "last", missing_ok=True) is not None:
        raise UserError(f"{out}: already holds a training run; continue it with --resume {out} "
                        "or choose another --out")
    torch.manual_seed(cfg.seed)
    splits = load_splits(config)
    if not splits.train:
        raise UserError(f"{config.data.labels}: the training splits {config.data.train_splits} hold no video")
    frames = frame_source(config, splits.train + splits.val)
    model = build_model(config, len(splits.classes), init=not resume).to(device)
    entities = (EntityWindows(config.data.entities, config.data.entity_slots)
                if model.config.use_entities else None)
    settings = inference_settings(config, splits.classes, splits.train)
    if entities is not None:
        settings.entities = entity_settings
    optimizer = adamw(model, config.optim.lr, config.optim.weight_decay)
    amp_dtype, use_scaler = amp_mode(cfg.amp, device)
    augment_rng = np.random.default_rng([cfg.seed, 1, dist.rank])
    per_step = cfg.batch_size * config.optim.accumulate
    steps_per_epoch = cfg.epoch_frames // config.data.clip_len // (per_step * dist.world_size)
    if steps_per_epoch == 0:
        raise UserError(f"train.epoch_frames={cfg.epoch_frames} is less than one step "
                        f"({per_step * dist.world_size} clips of {config.data.clip_len} frames); raise it")
    ddp = (torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=cfg.find_unused_parameters) if dist.enabled else model)
    run = Run(config, dist, device, splits, frames, entities, model, ddp, optimizer,
              torch.amp.GradScaler(device.type, enabled=use_scaler), amp_dtype,
              ClipAugment(config.augment, augment_rng), augment_rng, settings, steps_per_epoch)
    if resume:
        restore(run)
    if dist.is_main:
        remove_unpublished(out / "checkpoints")  # a directory a killed run left half written
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.yaml", saved_config_text(config))
    run.log = RunLog(out, dist.is_main, run.progress.epoch, run.progress.step, cfg.tensorboard)
    return run


def epoch_loader(run: Run, epoch: int) -> DataLoader:
    """This rank's clips of ``epoch`` not yet consumed, in batches."""
    config, cfg = run.config, run.config.train
    clips_per_epoch = cfg.epoch_frames // config.data.clip_len
    clips = shard(epoch_clips(run.splits.train, config.data.clip_len, clips_per_epoch, cfg.seed, epoch,
                              config.data.pad, config.data.foreground, config.data.foreground_balance,
                              {label: i + 1 for i, label in enumerate(run.splits.classes)}),
                  run.dist.rank, run.dist.world_size, equal=True)
    clips = clips[run.progress.batch * cfg.batch_size:run.steps_per_epoch * run.per_step]
    return DataLoader(ClipDataset(clips, run.splits.train, run.splits.classes, run.frames, run.entities,
                                  config.data.dilate),
                      batch_size=cfg.batch_size, num_workers=config.data.workers,
                      pin_memory=run.device.type == "cuda", drop_last=True,
                      # its own generator: the loader must not draw from the global RNG that
                      # dropout uses, or a resumed epoch would see other dropout masks
                      generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))


def train_epoch(run: Run, epoch: int, hooks: Sequence[Hook]) -> tuple[int, float]:
    """One epoch of steps: data → augment → forward → loss → backward → step.
    Returns the steps taken and the seconds they took."""
    from uglspot.progress import progress_bar

    config, progress, accumulate = run.config, run.progress, run.config.optim.accumulate
    progress.epoch = epoch
    num_classes = len(run.splits.classes)
    mean, std = tuple(run.model.config.pixel_mean), tuple(run.model.config.pixel_std)
    autocast = ((lambda: torch.autocast(run.device.type, dtype=run.amp_dtype)) if run.amp_dtype
                else contextlib.nullcontext)
    meter = StepMeter(run.device, progress.epoch_loss, progress.interval_loss, progress.interval_good,
                      progress.interval_steps)
    bar = progress_bar(f"train {config.model.name} epoch {epoch + 1}/{config.train.epochs}", run.steps_per_epoch,
                       "step", initial=progress.batch // accumulate, disable=not run.dist.is_main)
    run.model.train()
    for sample in epoch_loader(run, epoch):
        last_micro = progress.batch % accumulate == accumulate - 1
        x = sample["frames"].to(run.device, non_blocking=True)  # (B, T, 3, H, W) uint8
        targets = F.one_hot(sample["labels"].to(run.device), num_classes + 1).float()  # (B, T, K+1)
        entities = entity_batch(sample)
        entities = entities.to(run.device, non_blocking=True) if entities is not None else None
        x, targets, entities = run.augment(x, targets, entities)
        x = normalize(x, mean, std)
        sync = contextlib.nullcontext() if (last_micro or not run.dist.enabled) else run.ddp.no_sync()
        with sync:
            with autocast():
                output = run.ddp(x, entities)
            loss = run.model.training_loss(output, targets) / accumulate
            run.scaler.scale(loss).backward()
        meter.step_loss = meter.step_loss + loss.detach()
        progress.batch += 1
        if last_micro:
            lr = optimizer_step(run, meter)
            bar.update(1)
            if progress.bad_in_row >= config.train.max_bad_steps:
                raise bad_batch_error(config.train.max_bad_steps, sample["video"], sample["start"].tolist())
            end_step(run, meter, lr, bar, hooks)
    bar.close()
    progress.epoch_loss = float(meter.epoch_loss)
    return meter.epoch_steps, meter.seconds()


def optimizer_step(run: Run, meter: StepMeter) -> float:
    """Clip, step (unless the loss or gradients are not finite), schedule; returns the learning rate."""
    config, progress = run.config, run.progress
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.optim.grad_clip or math.inf)
    finite = torch.isfinite(meter.step_loss)
    if not run.scaler.is_enabled():  # with fp16 the scaler itself skips overflowing gradients
        finite = finite & torch.isfinite(grad_norm)
    finite = finite.float()
    if run.dist.enabled:  # every rank must take the same decision
        torch_dist.all_reduce(finite, op=torch_dist.ReduceOp.MIN)
    factor = schedule_factor(schedule_record(config, run.steps_per_epoch), progress.step)
    lr = set_lr(run.optimizer, config.optim.lr, factor)
    ok = bool(finite)  # one host sync per optimiser step, as GradScaler makes anyway
    if ok:
        run.scaler.step(run.optimizer)
        progress.bad_in_row = 0
        progress.epoch_good += 1
    else:
        progress.bad_in_row += 1
        progress.bad_total += 1
    meter.end_step(ok)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    progress.step += 1
    return lr


def end_step(run: Run, meter: StepMeter, lr: float, bar: Any, hooks: Sequence[Hook]) -> None:
    """Log every ``log_every`` steps, checkpoint every ``checkpoint_every``, then the hooks."""
    cfg, progress = run.config.train, run.progress
    epoch_done = progress.batch == run.steps_per_epoch * run.config.optim.accumulate
    if progress.step % cfg.log_every == 0 or epoch_done:
        loss, fps = meter.interval(run.frames_per_step())
        bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", fps=f"{fps:.0f}")
        run.log.step(progress.step, progress.epoch + 1, loss, lr, fps)
    if cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0 and not epoch_done:
        progress.epoch_loss = float(meter.epoch_loss)
        progress.interval_loss, progress.interval_good, progress.interval_steps = meter.open_interval()
        checkpoint_last(run)
    for hook in hooks:
        hook(progress, "step")


def end_epoch(run: Run, epoch: int, frames_per_s: float, seconds: float, hooks: Sequence[Hook]) -> None:
    """Validate, log the epoch, checkpoint ``last`` (and ``best`` when it improved), then the hooks."""
    cfg, progress, splits = run.config.train, run.progress, run.splits
    train_loss = progress.epoch_loss / progress.epoch_good if progress.epoch_good else math.nan
    val_metric = None
    if splits.val and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
        val_metric = validate(run)
    improved = val_metric is not None and (progress.best is None or val_metric > progress.best)
    if improved:
        progress.best, progress.best_epoch = val_metric, epoch
    run.log.epoch({"epoch": epoch + 1, "step": progress.step, "train_loss": train_loss,
                   "lr": run.optimizer.param_groups[0]["lr"], "bad_steps": progress.bad_total,
                   "val_metric": val_metric, "train_frames_per_s": frames_per_s, "seconds": seconds})
    progress.epoch, progress.batch, progress.epoch_loss, progress.epoch_good = epoch + 1, 0, 0.0, 0
    progress.interval_loss, progress.interval_good, progress.interval_steps = 0.0, 0, 0
    # best before last: the best score is recorded (in last's progress) only once its weights are
    # published, so a kill between the two resumes from the previous last and redoes this epoch
    if run.dist.is_main and (improved or (not splits.val and epoch + 1 == cfg.epochs)):
        save_checkpoint(Path(run.config.out), "best", run.ddp, progress, run.settings, None)
    checkpoint_last(run)
    for hook in hooks:
        hook(progress, "epoch")


def validate(run: Run) -> float:
    """The dataset's metric on the validation videos (split across ranks, predictions gathered), spotted
    once per head by a model that chooses its heads there (engine.head_choice)."""
    from uglspot.engine.evaluate import choose_class_thresholds, score_predictions
    from uglspot.engine.head_choice import choose_heads

    mine, model = shard(run.splits.val, run.dist.rank, run.dist.world_size), unwrap(run.ddp)
    label = f"validate {run.config.model.name} epoch {run.progress.epoch + 1}/{run.config.train.epochs}"

    def predict(what: str) -> list[Any]:
        predictions = validation_predictions(InferenceModel(model, run.settings), mine, run.frames, run.entities,
                                             run.device, label + what if run.dist.is_main else None)
        return [p for part in run.dist.gather(predictions) for p in part]

    predictions, run.settings.head_choice = choose_heads(model, run.splits.val, run.splits.classes, predict)
    run.model.train()
    choose_class_thresholds(run.settings, run.splits.val, predictions, run.splits.classes)  # what spot keeps
    return score_predictions(run.config.train.metric, run.splits.val, predictions, run.splits.classes)
