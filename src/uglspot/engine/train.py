"""The training loop: configuration in, checkpoints and logs out.

Read it top to bottom in :func:`train`: set up (devices, DDP, data, model,
optimiser), maybe restore a checkpoint, then per epoch draw the clips, and
per batch augment → forward → loss → backward → (every ``accumulate``
batches) clip, step, schedule. Checkpoints, validation and logs hang off
the loop at step and epoch ends.

A run directory holds ``config.yaml`` (resolved), ``metrics.csv`` (one row
per epoch), ``steps.csv`` (loss and lr every ``log_every`` steps),
``checkpoints/{last,best}.json`` pointing at complete checkpoint directories
(``model.safetensors`` + ``config.json`` + ``inference.json``, and for
``last`` the training state), and TensorBoard events when available.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from uglspot.config import dump_yaml
from uglspot.data.augment import ClipAugment, normalize
from uglspot.data.clips import epoch_clips
from uglspot.data.dataset import ClipDataset, EntityWindows, FrameSource, entity_batch
from uglspot.data.labels import Video
from uglspot.engine.config import RunConfig
from uglspot.engine.runtime import Distributed, amp_mode, pick_device, shard, unwrap
from uglspot.engine.schedule import lr_factor, set_lr
from uglspot.engine.sources import expected_frames, frame_source, load_splits
from uglspot.engine.state import load_state, publish, remove_unpublished, resolve, save_state
from uglspot.errors import UserError
from uglspot.io import write_json_atomic, write_text_atomic

INFERENCE_JSON = "inference.json"


@dataclass
class Progress:
    """Where a run is; saved with every checkpoint."""
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # micro-batches of this epoch already consumed on each rank
    step: int = 0  # optimiser iterations so far (skipped ones included; the schedule follows them)
    bad_in_row: int = 0  # consecutive non-finite steps
    bad_total: int = 0
    epoch_loss: float = 0.0  # sum of this epoch's finite step losses
    epoch_good: int = 0  # and their number
    best: float | None = None  # best validation metric so far
    best_epoch: int | None = None


class StopTraining(Exception):
    """A hook raises this to end a run at once (tests use it to simulate a kill)."""


Hook = Callable[[Progress], None]


def inference_settings(config: RunConfig, classes: Sequence[str], videos: Sequence[Video]) -> dict[str, Any]:
    """What ``uglspot spot`` needs besides the weights: classes, decoding, windows, NMS."""
    rates = [v.fps for v in videos if v.fps > 0]
    fps = config.data.fps or (float(np.median(rates)) if rates else None)
    return {"dataset": config.dataset, "classes": list(classes), "fps": fps, "height": config.data.height,
            "width": config.data.width, "crop": config.augment.crop, "clip_len": config.data.clip_len,
            "pad": config.data.pad, "threshold": config.infer.threshold, "nms_window": config.infer.nms_window,
            "batch_size": config.infer.batch_size, "entities_per_event": config.infer.entities_per_event,
            "entity_slots": config.data.entity_slots}


def build_model(config: RunConfig, num_classes: int) -> torch.nn.Module:
    from uglspot.model.spotter import create_model

    options = {"clip_len": config.data.clip_len, "entity_slots": config.data.entity_slots,
               **config.model.options}
    model = create_model(config.model.name, num_classes, **options)
    if model.config.use_entities and not config.data.entities:
        raise UserError(f"model {config.model.name!r} uses entities but data.entities is not set; set it to an "
                        "entity store folder, or --set model.options.use_entities=false")
    return model


class RunLog:
    """``metrics.csv`` per epoch, ``steps.csv`` per log interval, optional
    TensorBoard; written by rank 0 only. On resume, rows past the
    checkpoint are dropped so the files read as one uninterrupted run."""

    METRICS = ["epoch", "step", "train_loss", "lr", "bad_steps", "val_metric", "train_frames_per_s", "seconds"]
    STEPS = ["step", "epoch", "loss", "lr", "frames_per_s"]

    def __init__(self, run: Path, enabled: bool, progress: Progress, tensorboard: bool):
        self.enabled = enabled
        self.metrics = run / "metrics.csv"
        self.steps = run / "steps.csv"
        self.writer = None
        if not enabled:
            return
        self._truncate(self.metrics, self.METRICS, lambda row: int(row["epoch"]) < progress.epoch)
        self._truncate(self.steps, self.STEPS, lambda row: int(row["step"]) <= progress.step)
        if tensorboard:
            with contextlib.suppress(ImportError):
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=progress.step)

    @staticmethod
    def _truncate(path: Path, columns: list[str], keep: Callable[[dict[str, str]], bool]) -> None:
        rows = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if keep(row)]
        lines = [",".join(columns)] + [",".join(row[c] for c in columns) for row in rows]
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


def save_checkpoint(run: Path, name: str, model: torch.nn.Module, progress: Progress,
                    settings: dict[str, Any], training_state: dict[str, Any] | None) -> Path:
    """Write a complete checkpoint directory, then publish it as ``name``."""
    from uglspot.engine.checkpoint import save_model

    checkpoints = run / "checkpoints"
    directory = checkpoints / f"{name}-e{progress.epoch:04d}-s{progress.step:08d}"
    if directory.exists() and directory != resolve(checkpoints, name, missing_ok=True):
        import shutil

        shutil.rmtree(directory)
    save_model(unwrap(model), directory)
    write_json_atomic(directory / INFERENCE_JSON, settings)
    if training_state is not None:
        save_state(training_state, directory)
    others = {resolve(checkpoints, other, missing_ok=True) for other in ("last", "best") if other != name}
    publish(checkpoints, name, directory, keep={p for p in others if p is not None})
    return directory


def bad_batch_error(max_bad: int, videos: Sequence[str], starts: Sequence[int]) -> UserError:
    where = ", ".join(f"{v} @ {s}" for v, s in zip(videos, starts))
    return UserError(f"{max_bad} non-finite losses in a row; stopping. Last batch (video @ first frame): {where}. "
                     "Check those videos' frames and labels, lower optim.lr, set optim.grad_clip, "
                     "or try train.amp=off")


OOM_ADVICE = ("out of GPU memory. Lower train.batch_size (and raise optim.accumulate to keep the effective "
              "batch), shorten data.clip_len, lower data.height / augment.crop, use a lighter model "
              "(model.name), or enable activation checkpointing in the model options if it has one")


def train(config: RunConfig, resume: bool = False, hooks: Sequence[Hook] = ()) -> Progress:
    """Train ``config``; with ``resume`` continue the run in ``config.out`` from its last checkpoint."""
    dist = Distributed.from_env()
    device = pick_device(config.train.device, dist, option="train.device")
    if dist.enabled and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.train.deterministic or deterministic)
    try:
        return _train(config, resume, hooks, dist, device)
    except torch.OutOfMemoryError:
        raise UserError(OOM_ADVICE) from None
    finally:
        torch.use_deterministic_algorithms(deterministic)
        if dist.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _train(config: RunConfig, resume: bool, hooks: Sequence[Hook], dist: Distributed,
           device: torch.device) -> Progress:
    run, cfg = Path(config.out), config.train
    checkpoints = run / "checkpoints"
    if not resume and resolve(checkpoints, "last", missing_ok=True) is not None:
        raise UserError(f"{run}: already holds a training run; continue it with --resume {run} "
                        "or choose another --out")
    torch.manual_seed(cfg.seed)

    splits = load_splits(config)
    if not splits.train:
        raise UserError(f"{config.data.labels}: the training splits {config.data.train_splits} hold no video")
    frames = frame_source(config, splits.train + splits.val)
    model = build_model(config, len(splits.classes)).to(device)
    entities = (EntityWindows(config.data.entities, config.data.entity_slots)
                if model.config.use_entities else None)
    settings = inference_settings(config, splits.classes, splits.train)
    if entities is not None:
        from uglspot.engine.entities import check_entity_stores

        settings["entities"] = check_entity_stores(
            config.data.entities, [(v.video, expected_frames(config, v)) for v in splits.train + splits.val],
            model.config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    amp_dtype, use_scaler = amp_mode(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    augment_rng = np.random.default_rng([cfg.seed, 1, dist.rank])
    augment = ClipAugment(config.augment, augment_rng)

    per_step = cfg.batch_size * config.optim.accumulate  # clips per optimiser step on one rank
    clips_per_epoch = config.train.epoch_frames // config.data.clip_len
    steps_per_epoch = clips_per_epoch // (per_step * dist.world_size)
    if steps_per_epoch == 0:
        raise UserError(f"train.epoch_frames={cfg.epoch_frames} is less than one step "
                        f"({per_step * dist.world_size} clips of {config.data.clip_len} frames); raise it")
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = round(config.optim.warmup_epochs * steps_per_epoch)

    progress = Progress()
    if resume:
        last = resolve(checkpoints, "last")
        from uglspot.engine.checkpoint import load_model

        model.load_state_dict(load_model(last, map_location="cpu").state_dict())
        state = load_state(last)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if state["world_size"] != dist.world_size:
            raise UserError(f"{last}: written by {state['world_size']} process(es), resumed with "
                            f"{dist.world_size}; resume with the same number so every rank redraws its clips")
        progress = Progress(**state["progress"])
        restore_rng(state["rng"][dist.rank], augment_rng, device)
    if dist.is_main:
        remove_unpublished(checkpoints)  # a directory a killed run left half written
        run.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run / "config.yaml", dump_yaml(config))
    log = RunLog(run, dist.is_main, progress, cfg.tensorboard)
    ddp = (torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=cfg.find_unused_parameters) if dist.enabled else model)
    mean, std = tuple(model.config.pixel_mean), tuple(model.config.pixel_std)
    num_classes = len(splits.classes)

    def training_state() -> dict[str, Any]:
        states = [rng_state(augment_rng, device)]
        if dist.enabled:  # every rank's generators, so each resumes its own stream
            gathered: list[Any] = [None] * dist.world_size
            torch_dist.all_gather_object(gathered, states[0])
            states = gathered
        return {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "progress": asdict(progress), "rng": states, "world_size": dist.world_size}

    def checkpoint_last() -> None:
        state = training_state()  # collective: every rank takes part
        if dist.is_main:
            save_checkpoint(run, "last", ddp, progress, settings, state)

    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    for epoch in range(progress.epoch, cfg.epochs):
        progress.epoch = epoch
        clips = shard(epoch_clips(splits.train, config.data.clip_len, clips_per_epoch, cfg.seed, epoch,
                                  config.data.pad), dist.rank, dist.world_size, equal=True)
        clips = clips[progress.batch * cfg.batch_size:steps_per_epoch * per_step]
        loader = DataLoader(ClipDataset(clips, splits.train, splits.classes, frames, entities,
                                        config.data.dilate),
                            batch_size=cfg.batch_size, num_workers=config.data.workers,
                            pin_memory=device.type == "cuda", drop_last=True,
                            # its own generator: the loader must not draw from the global RNG that
                            # dropout uses, or a resumed epoch would see other dropout masks
                            generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        model.train()
        started, interval_start = time.perf_counter(), time.perf_counter()
        steps_at_start = progress.step
        epoch_loss = torch.tensor(progress.epoch_loss, device=device)
        step_loss = torch.zeros((), device=device)
        interval_loss, interval_good, interval_steps = torch.zeros((), device=device), 0, 0
        from tqdm import tqdm

        bar = tqdm(total=steps_per_epoch, initial=progress.batch // config.optim.accumulate,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not dist.is_main, dynamic_ncols=True)
        for sample in loader:
            micro = progress.batch % config.optim.accumulate
            last_micro = micro == config.optim.accumulate - 1
            x = sample["frames"].to(device, non_blocking=True)
            targets = F.one_hot(sample["labels"].to(device), num_classes + 1).float()  # (B, T, K+1)
            batch_entities = entity_batch(sample)
            if batch_entities is not None:
                batch_entities = batch_entities.to(device, non_blocking=True)
            x, targets, batch_entities = augment(x, targets, batch_entities)
            x = normalize(x, mean, std)
            sync = contextlib.nullcontext() if (last_micro or not dist.enabled) else ddp.no_sync()
            with sync:
                with autocast():
                    output = ddp(x, batch_entities)
                loss = model.loss(output.logits.float(), targets) / config.optim.accumulate
                scaler.scale(loss).backward()
            step_loss = step_loss + loss.detach()
            progress.batch += 1
            if not last_micro:
                continue

            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip or math.inf)
            finite = torch.isfinite(step_loss)
            if not use_scaler:  # with fp16 the scaler itself skips overflowing gradients
                finite = finite & torch.isfinite(grad_norm)
            finite = finite.float()
            if dist.enabled:  # every rank must take the same decision
                torch_dist.all_reduce(finite, op=torch_dist.ReduceOp.MIN)
            lr = set_lr(optimizer, config.optim.lr,
                        lr_factor(progress.step, warmup_steps, total_steps, config.optim.warmup_start))
            if bool(finite):  # one host sync per optimiser step, as GradScaler makes anyway
                scaler.step(optimizer)
                progress.bad_in_row = 0
                epoch_loss = epoch_loss + step_loss
                interval_loss = interval_loss + step_loss
                progress.epoch_good += 1
                interval_good += 1
            else:
                progress.bad_in_row += 1
                progress.bad_total += 1
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step_loss = torch.zeros((), device=device)
            progress.step += 1
            interval_steps += 1
            bar.update(1)
            if progress.bad_in_row >= cfg.max_bad_steps:
                raise bad_batch_error(cfg.max_bad_steps, sample["video"], sample["start"].tolist())

            if progress.step % cfg.log_every == 0 or progress.batch == steps_per_epoch * config.optim.accumulate:
                seconds = time.perf_counter() - interval_start
                fps = interval_steps * per_step * dist.world_size * config.data.clip_len / max(seconds, 1e-9)
                mean_loss = (interval_loss / max(interval_good, 1)).item() if interval_good else math.nan
                bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{lr:.3g}", fps=f"{fps:.0f}")
                log.step(progress.step, epoch, mean_loss, lr, fps)
                interval_loss, interval_good, interval_steps = torch.zeros((), device=device), 0, 0
                interval_start = time.perf_counter()
            epoch_done = progress.batch == steps_per_epoch * config.optim.accumulate
            if cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0 and not epoch_done:
                progress.epoch_loss = float(epoch_loss)
                checkpoint_last()
            for hook in hooks:
                hook(progress)
        bar.close()

        seconds = time.perf_counter() - started
        frames_per_s = ((progress.step - steps_at_start) * per_step * dist.world_size * config.data.clip_len
                        / max(seconds, 1e-9))
        train_loss = float(epoch_loss) / progress.epoch_good if progress.epoch_good else math.nan
        val_metric = None
        if splits.val and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            val_metric = validate(unwrap(ddp), config, splits.classes, splits.val, frames, entities,
                                  dist, amp_dtype)
        improved = val_metric is not None and (progress.best is None or val_metric > progress.best)
        if improved:
            progress.best, progress.best_epoch = val_metric, epoch
        log.epoch({"epoch": epoch, "step": progress.step, "train_loss": train_loss,
                   "lr": optimizer.param_groups[0]["lr"], "bad_steps": progress.bad_total,
                   "val_metric": val_metric, "train_frames_per_s": frames_per_s, "seconds": seconds})
        progress.epoch, progress.batch, progress.epoch_loss, progress.epoch_good = epoch + 1, 0, 0.0, 0
        checkpoint_last()
        if dist.is_main and (improved or (not splits.val and epoch + 1 == cfg.epochs)):
            save_checkpoint(run, "best", ddp, progress, settings, None)
        for hook in hooks:
            hook(progress)
    log.close()
    if dist.enabled:
        torch_dist.barrier()
    return progress


def validate(model: torch.nn.Module, config: RunConfig, classes: Sequence[str], videos: Sequence[Video],
             frames: FrameSource, entities: EntityWindows | None, dist: Distributed,
             amp_dtype: torch.dtype | None) -> float:
    """The dataset's metric on the validation videos; videos split across ranks, predictions gathered."""
    from uglspot.engine.evaluate import score_predictions
    from uglspot.engine.infer import score_video, spot_events

    mine = list(videos)[dist.rank::dist.world_size]
    predictions = []
    for video in mine:
        def read_entities(start: int, count: int, video_id: str = video.video) -> dict[str, torch.Tensor]:
            return entities.window(video_id, start, count)

        scores = score_video(model, video.num_frames,
                             lambda start, count, video_id=video.video: frames.read(video_id, start, count),
                             read_entities if entities is not None else None, config.data.clip_len,
                             config.data.pad, config.infer.batch_size, config.augment.crop, amp_dtype)
        events = spot_events(scores, classes, config.infer.threshold, config.infer.nms_window)
        predictions.append((video.video, [(e.frame, e.label, e.score) for e in events]))
    if dist.enabled:
        gathered: list[Any] = [None] * dist.world_size
        torch_dist.all_gather_object(gathered, predictions)
        predictions = [p for part in gathered for p in part]
    model.train()
    return score_predictions(config.train.metric, videos, predictions, classes)
