"""Where a run executes: its rank among processes, its device, its
mixed-precision mode, and its share of the work. One of each, for training,
inference and detection alike."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as torch_dist

from uglspot.errors import UserError
from uglspot.lock import output_lock


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, item: Any) -> list[Any]:
        """Every rank's ``item``, in rank order (collective; ``[item]`` in one process)."""
        if not self.enabled:
            return [item]
        gathered: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(gathered, item)
        return gathered

    @staticmethod
    def from_env() -> "Distributed":
        """Rank and world size as ``torchrun`` sets them (one process: rank 0 of 1)."""
        try:
            return Distributed(rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                               local_rank=int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError:
            raise UserError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} / "
                            f"LOCAL_RANK={os.environ.get('LOCAL_RANK')!r} must be integers "
                            "(they are set by torchrun)") from None


@contextlib.contextmanager
def main_rank_lock(dist: Distributed, folder: str | Path, command: str) -> Iterator[None]:
    """The output lock of ``folder`` (:func:`uglspot.lock.output_lock`), taken by the main
    rank alone: under torchrun the other ranks write into that folder on its
    behalf, so a job does not refuse itself. When the main rank is refused
    and a process group is up, every rank raises the same error rather than
    waiting for rank 0 in the next collective."""
    with contextlib.ExitStack() as stack:
        refusal = None
        if dist.is_main:
            try:
                stack.enter_context(output_lock(folder, command))
            except UserError as exc:
                refusal = str(exc)
        if dist.enabled and torch_dist.is_available() and torch_dist.is_initialized():
            shared = [refusal]
            torch_dist.broadcast_object_list(shared, src=0)
            refusal = shared[0]
        if refusal is not None:
            raise UserError(refusal)
        yield


def pick_device(name: str, dist: Distributed | None = None, option: str = "--device") -> torch.device:
    """``auto``: this process's GPU (``cuda:LOCAL_RANK``) when CUDA is available,
    else the CPU; other names as given (a bare ``cuda`` under DDP is the local
    GPU). ``option`` names the setting in errors."""
    dist = dist or Distributed()
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device(f"cuda:{dist.local_rank % torch.cuda.device_count()}")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{option}={name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{option}={name}: CUDA is not available here; use {option}=cpu or auto")
    if device.type == "cuda" and dist.enabled and device.index is None:
        device = torch.device(f"cuda:{dist.local_rank}")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions and matmuls natively
    (AVX512-BF16 or AMX): there autocast to bf16 speeds a small model up."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def amp_mode(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed).

    CUDA: ``auto`` is bf16 where supported, else fp16 with a scaler. CPU:
    ``auto`` and ``off`` run fp32; ``bf16`` runs bf16 autocast on a CPU
    that supports it (and is an error on one that does not); fp16 is CUDA
    only.
    """
    if device.type != "cuda":
        if mode == "fp16":
            raise UserError(f"train.amp=fp16 needs a CUDA device; use train.amp=bf16, auto or off on {device}")
        if mode == "bf16":
            if device.type != "cpu" or not cpu_has_bf16():
                raise UserError(f"train.amp=bf16: this {device.type.upper()} has no native bf16 (a CPU needs "
                                f"AVX512-BF16 or AMX); use train.amp=off")
            return torch.bfloat16, False
        return None, False
    if mode == "off":
        return None, False
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16, False
    return torch.float16, True


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel and/or torch.compile wrapper."""
    for _ in range(3):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod", None) or model
    return model


def shard(items: Sequence, rank: int, world_size: int, equal: bool = False) -> list:
    """Rank ``rank``'s interleaved share of ``items``: every ``world_size``-th
    item from ``rank`` (round robin, so long and short videos spread evenly).
    With ``equal`` the tail is dropped so every rank gets the same number, as
    DDP's lock-step training needs."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"bad shard: rank {rank} of world size {world_size}")
    usable = len(items) - len(items) % world_size if equal else len(items)
    return list(items[rank:usable:world_size])


def bad_batch_error(max_bad: int, videos: Sequence[str], starts: Sequence[int]) -> UserError:
    where = ", ".join(f"{v} @ {s}" for v, s in zip(videos, starts))
    return UserError(f"{max_bad} non-finite losses in a row; stopping. Last batch (video @ first frame): {where}. "
                     "Check those videos' frames and labels, lower optim.lr, set optim.grad_clip, "
                     "or try train.amp=off")


OOM_ADVICE = ("out of GPU memory. Lower train.batch_size (and raise optim.accumulate to keep the effective "
              "batch), shorten data.clip_len, lower data.height / augment.crop, or use a lighter model "
              "(model.name, e.g. ugl_rny002)")
