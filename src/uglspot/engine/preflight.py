"""Preflight: what a run can know before it starts, checked at once.

``uglspot train`` and ``uglspot predict`` call :func:`check_training` and
:func:`check_prediction` before they create anything and before the first
step. Every problem found is one line (what, where, what to do) and all of
them are raised together as one :class:`PreflightError`, so a user fixes
them in one go instead of meeting them one by one, an epoch apart:

- the frames: every video file exists and opens, with the labels' frame
  count at the rate it is decoded at (one probe per video: the header and
  first frame, never the whole file), or every frame-cache entry fits;
  ``data.fps`` agrees with the labels' rate;
- the entity stores (when the model reads entities): present, readable, one
  vocabulary the model embeds, the labels' frame count, detected at the
  decoding rate;
- the metric fits the video ids (SoccerNet's needs ``<game>/1|2`` halves);
- the machine: the device exists, data-loader workers fit the CPU cores
  (unless ``--set data.workers`` asks for more), and an estimate of the
  memory one batch and the workers take (:func:`estimate_memory`, a pure
  function) fits the free memory, naming the ``--set`` keys that lower it.

Nothing here writes or caches anything.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Sequence

import torch

from uglspot.data.labels import Video
from uglspot.engine.config import RunConfig
from uglspot.engine.runtime import Distributed, amp_mode, pick_device
from uglspot.engine.sources import decode_rate, expected_frames, frame_cache_problems, load_splits
from uglspot.errors import UserError, listed

SHOWN_PER_KIND = 10  # problems of one kind shown one per line; the rest are named on one more line
GIB = 2 ** 30


class PreflightError(UserError):
    """Every problem found before a run started; one line each."""

    def __init__(self, what: str, problems: Sequence[str]):
        self.what, self.problems = what, list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            lines = [f"{len(self.problems)} problems found before {what} started; nothing was written:"]
            super().__init__("\n".join(lines + [f"  {line}" for line in self.problems]))

    def __reduce__(self) -> tuple:  # rebuilt from its arguments, e.g. in the parent of a worker process
        return type(self), (self.what, self.problems)


# ------------------------------------------------------------------ machine and memory


@dataclass(frozen=True)
class Machine:
    """What this computer offers a run (:func:`read_machine`; tests pass their own)."""
    cores: int  # CPU cores this process may use
    ram_available: int | None  # bytes of RAM free for a new process; None: unknown
    gpu_free: int | None = None  # bytes free on the run's GPU; None: no GPU or unknown


def _available_ram() -> int | None:
    """MemAvailable of /proc/meminfo, lowered to the room left under a cgroup limit (containers)."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = int(limit) - used
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def read_machine(device: torch.device | None = None) -> Machine:
    """Cores, free RAM and, for a CUDA ``device``, its free memory, read now."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    gpu_free = None
    if device is not None and device.type == "cuda":
        try:
            gpu_free = torch.cuda.mem_get_info(device)[0]
        except RuntimeError:
            gpu_free = None
    return Machine(cores=cores, ram_available=_available_ram(), gpu_free=gpu_free)


# Bytes of activation memory per pixel of a frame the model sees (after the
# crop), for one training step (forward + backward) or one forward pass under
# inference_mode, fp32 or mixed precision. fp32: measured on CPU (peak RSS of
# one step, B1 x T16 at 224x398; benchmarks/memory_estimate.py); mixed: the
# peak GPU memory of E2E-Spot's own code at B8 x T100, AMP fp16, on one H200
# (RegNet-Y 200MF 9.7 GiB and 800MF 22.6 GiB at 224x224, 800MF 38.4 GiB at 224x398).
# Other backbones count as the largest.
ACTIVATION_BYTES = {
    ("regnety_002", "train", "fp32"): 720, ("regnety_008", "train", "fp32"): 1450,
    ("regnety_002", "train", "mixed"): 270, ("regnety_008", "train", "mixed"): 610,
    ("regnety_002", "infer", "fp32"): 170, ("regnety_008", "infer", "fp32"): 260,
    ("regnety_002", "infer", "mixed"): 90, ("regnety_008", "infer", "mixed"): 130,
}
ENTITY_SLOT_BYTES = 16 * 1024  # per entity slot per frame of a training step (tokens, attention)
PROCESS_BYTES = GIB * 3 // 4  # Python, torch and the model in the main process
WORKER_BYTES = 300 * 2 ** 20  # a forked data-loader worker's own pages
PREFETCH = 2  # batches each data-loader worker holds ready (torch's prefetch_factor)
CUDA_CONTEXT_BYTES = GIB // 2


@dataclass(frozen=True)
class RunShape:
    """What sets a run's memory."""
    batch_size: int  # clips (training) or windows (inference) per forward pass
    clip_len: int
    height: int  # decoded frame size
    width: int
    model_pixels: int  # pixels of a frame the model sees (the crop's)
    backbone: str = "regnety_008"
    entity_slots: int = 0  # 0 without entities
    workers: int = 0  # data-loader processes
    processes: int = 1  # training processes on this machine (torchrun --nproc_per_node)
    training: bool = True
    gpu: bool = False
    mixed_precision: bool = False  # autocast (bf16/fp16)


@dataclass(frozen=True)
class MemoryEstimate:
    ram: int  # bytes of RAM the run takes on this machine (all its processes)
    gpu: int  # bytes on each GPU (0 on CPU)
    parts: dict[str, int] = field(default_factory=dict)


def estimate_memory(shape: RunShape) -> MemoryEstimate:
    """A rough, deliberately round estimate of a run's peak memory: the
    model's activations for one batch (bytes per pixel from
    ``ACTIVATION_BYTES``, entity slots, the float input), the uint8 batches
    the data-loader workers hold, and the processes themselves. On a GPU the
    activations go to the GPU and the rest to RAM."""
    frames = shape.batch_size * shape.clip_len
    uint8_batch = frames * 3 * shape.height * shape.width
    precision = "mixed" if shape.mixed_precision else "fp32"
    per_pixel = ACTIVATION_BYTES.get((shape.backbone, "train" if shape.training else "infer", precision))
    if per_pixel is None:
        per_pixel = max(v for (_, mode, p), v in ACTIVATION_BYTES.items()
                        if mode == ("train" if shape.training else "infer") and p == precision)
    activations = frames * shape.model_pixels * per_pixel + frames * 3 * shape.model_pixels * 4
    if shape.training:
        activations += frames * shape.entity_slots * ENTITY_SLOT_BYTES
    loader = shape.workers * (WORKER_BYTES + PREFETCH * uint8_batch) + uint8_batch
    parts = {"activations": activations, "loader": loader, "process": PROCESS_BYTES}
    per_process_ram = PROCESS_BYTES + loader + (0 if shape.gpu else activations)
    gpu = activations + CUDA_CONTEXT_BYTES if shape.gpu else 0
    return MemoryEstimate(ram=per_process_ram * shape.processes, gpu=gpu, parts=parts)


def fits(estimate: MemoryEstimate, machine: Machine) -> tuple[bool, bool]:
    """(RAM fits or is unknown, GPU fits or is unknown)."""
    ram_ok = machine.ram_available is None or estimate.ram <= machine.ram_available
    gpu_ok = not estimate.gpu or machine.gpu_free is None or estimate.gpu <= machine.gpu_free
    return ram_ok, gpu_ok


def memory_problem(shape: RunShape, machine: Machine, reducers: str, batch_key: str) -> str | None:
    """One line when ``shape`` does not fit ``machine``: how much it needs,
    how much is free, the largest ``batch_key`` that fits, and ``reducers``."""
    estimate = estimate_memory(shape)
    ram_ok, gpu_ok = fits(estimate, machine)
    if ram_ok and gpu_ok:
        return None
    where = []
    if not ram_ok:
        where.append(f"about {estimate.ram / GIB:.1f} GiB of RAM but {machine.ram_available / GIB:.1f} GiB is free")
    if not gpu_ok:
        where.append(f"about {estimate.gpu / GIB:.1f} GiB on the GPU but {machine.gpu_free / GIB:.1f} GiB is free")
    smaller = next((b for b in range(shape.batch_size - 1, 0, -1)
                    if all(fits(estimate_memory(replace(shape, batch_size=b)), machine))), None)
    advice = (f"--set {batch_key}={smaller} fits" if smaller else f"even {batch_key}=1 does not fit")
    return (f"memory: a {'training step' if shape.training else 'forward pass'} of {shape.batch_size} x "
            f"{shape.clip_len} frames needs {' and '.join(where)} (an estimate); {advice}; "
            f"lower it with {reducers}")


# ------------------------------------------------------------------ data


def _capped(lines: list[str], ids: list[str], rest: str) -> list[str]:
    """``lines`` (one per video), the first ``SHOWN_PER_KIND`` of them and one
    more line naming the others' ids."""
    if len(lines) <= SHOWN_PER_KIND:
        return lines
    others = ids[SHOWN_PER_KIND:]
    return lines[:SHOWN_PER_KIND] + [f"{rest} {len(others)} more: {', '.join(others)}"]


def _first(lines: list[str], rest: str) -> list[str]:
    """The first ``SHOWN_PER_KIND`` of ``lines`` and a count of the others."""
    if len(lines) <= SHOWN_PER_KIND + 1:
        return lines
    return lines[:SHOWN_PER_KIND] + [f"{rest} {len(lines) - SHOWN_PER_KIND} more problems like these; "
                                     "fix the ones above and run again to see which remain"]


def rate_problems(config: RunConfig, videos: Sequence[Video]) -> list[str]:
    """``data.fps`` far (over 15 %) from the rate of the labels: their frame
    numbers would not be the decoded frames. A few SoccerNet halves are up
    to 7 % off 25/12 and pass."""
    if not config.data.fps:
        return []
    far: dict[float, list[str]] = {}
    for video in videos:
        if video.fps > 0 and abs(video.fps - config.data.fps) > 0.15 * video.fps:
            far.setdefault(round(video.fps, 4), []).append(video.video)
    problems = []
    for rate, ids in sorted(far.items()):
        shown = listed(ids, SHOWN_PER_KIND)
        problems.append(f"data.fps={config.data.fps:g} but the labels of {len(ids)} video(s) count frames at "
                        f"{rate:g} fps ({shown}) in {config.data.labels}; their events would land on the wrong "
                        f"frames: --set data.fps={rate:g} (or data.fps=null, the labels' rate), or use labels "
                        f"made at {config.data.fps:g} fps")
    return problems


def _probe(path: Path, rate: float | None) -> int:
    """Frames of the video at ``rate`` (None: its own), from its header."""
    from uglspot.video import VideoReader

    reader = VideoReader(path, fps=rate)
    return reader.num_frames if rate else reader.info.num_frames


def video_problems(config: RunConfig, videos: Sequence[Video]) -> list[str]:
    """Every video has a file under ``data.videos`` that opens, with the
    labels' frame count at the rate it is decoded at."""
    from uglspot.data.inputs import find_video_file
    from uglspot.engine.store_checks import counts_disagree

    root = Path(config.data.videos)
    if not root.is_dir():
        return [f"data.videos={root}: no such folder; point it at the folder of video files "
                "(<video id>.mp4, ...) or set data.frame_cache"]
    missing_lines, missing, found = [], [], []
    for video in videos:
        try:
            found.append((video, find_video_file(root, video.video)))
        except UserError as exc:
            missing_lines.append(str(exc))
            missing.append(video.video)
    problems = []
    if len(missing) > 1 and not found:
        problems.append(f"data.videos={root}: none of the {len(missing)} videos of the labels is there; "
                        "is it the right folder? (each is listed below)")
    problems += _capped(missing_lines, missing, f"data.videos={root}: no file either for")

    def probe(item: tuple[Video, Path]) -> str | None:
        video, path = item
        rate = decode_rate(config, video)
        try:
            count = _probe(path, rate)
        except UserError as exc:
            return str(exc)
        expected = expected_frames(config, video)
        if expected is not None and counts_disagree(count, expected):
            at = f"{rate:g} fps" if rate else "its own rate"
            return (f"{path}: {count} frames at {at} but the labels of {video.video!r} say {expected}; "
                    "is it the same video? check the labels' num_frames and fps, or data.fps")
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(found)))) as pool:
        results = list(pool.map(probe, found))
    bad = [(video.video, line) for (video, _), line in zip(found, results) if line]
    problems += _capped([line for _, line in bad], [v for v, _ in bad], "and the same for")
    return problems


def frame_problems(config: RunConfig, videos: Sequence[Video]) -> list[str]:
    """The frames every video needs, from the frame cache or the video files."""
    if config.data.frame_cache:
        from uglspot.data.frame_cache import FrameCache

        try:
            cache = FrameCache(config.data.frame_cache)
        except UserError as exc:
            return [f"data.frame_cache={config.data.frame_cache}: {exc}"]
        return frame_cache_problems(cache, config, videos)
    if not config.data.videos:
        return ["no frames: set data.videos (a folder of video files) or data.frame_cache"]
    return video_problems(config, videos)


def metric_problems(metric: str, videos: Sequence[Video], where: str) -> list[str]:
    """The metric can score these videos: ``soccernet_tight`` needs SoccerNet
    half ids (``<game>/1``, ``<game>/2``)."""
    if metric != "soccernet_tight":
        return []
    from uglspot.data.soccernet import split_video_id

    bad = []
    for video in videos:
        try:
            split_video_id(video.video, where)
        except UserError:
            bad.append(video.video)
    if not bad:
        return []
    shown = listed(bad, SHOWN_PER_KIND)
    return [f"train.metric=soccernet_tight scores SoccerNet halves ('<game>/1', '<game>/2') but {len(bad)} "
            f"video(s) of {where} are not: {shown}; --set train.metric=frame_map for other videos"]


def _frame_width(config: RunConfig, videos: Sequence[Video]) -> int:
    """Decoded frame width: data.width, else the labels' aspect ratio (16:9 when unknown)."""
    if config.data.width:
        return config.data.width
    sized = next((v for v in videos if v.width and v.height), None)
    ratio = sized.width / sized.height if sized else 16 / 9
    return max(2, int(round(config.data.height * ratio / 2)) * 2)


# ------------------------------------------------------------------ the two entry points


@dataclass
class Checked:
    """What preflight found that the run goes on with."""
    device: torch.device
    entity_settings: dict[str, Any] = field(default_factory=dict)


def check_training(config: RunConfig, dist: Distributed | None = None, set_keys: Collection[str] = (),
                   machine: Machine | None = None) -> Checked:
    """Check ``config`` before training: labels, frames, entity stores,
    metric, device, cores and memory. ``set_keys`` are the keys the user
    gave with ``--set`` (an explicit ``data.workers`` is trusted);
    ``machine`` defaults to this one. Raises :class:`PreflightError` listing
    every problem; else returns the device and the stores' settings."""
    from uglspot.engine.store_checks import entity_store_problems
    from uglspot.model.spotter import build_config

    dist = dist or Distributed()
    problems: list[str] = []
    device = None
    try:
        device = pick_device(config.train.device, dist, option="train.device")
    except UserError as exc:
        problems.append(str(exc))
    try:
        splits = load_splits(config)
    except UserError as exc:
        raise PreflightError("training", problems + [str(exc)]) from None
    if not splits.train:
        problems.append(f"{config.data.labels}: the training splits {config.data.train_splits} hold no video")
    videos = list({v.video: v for v in splits.train + splits.val}.values())
    model_config = None
    try:
        model_config = build_config(config.model.name, len(splits.classes), clip_len=config.data.clip_len,
                                    entity_slots=config.data.entity_slots, **config.model.options)
    except UserError as exc:
        problems.append(str(exc))
    problems += rate_problems(config, videos)
    problems += frame_problems(config, videos)
    settings: dict[str, Any] = {}
    if model_config is not None and model_config.use_entities:
        if not config.data.entities:
            problems.append(f"model {config.model.name!r} uses entities but data.entities is not set; set it to an "
                            "entity store folder, or --set model.options.use_entities=false")
        else:
            lines, settings = entity_store_problems(
                config.data.entities, [(v.video, expected_frames(config, v)) for v in videos], model_config,
                rates={v.video: decode_rate(config, v) for v in videos})
            problems += _first(lines, f"{config.data.entities}: and")
    if splits.val:
        problems += metric_problems(config.train.metric, splits.val, f"data.val_split={config.data.val_split}")
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
    machine = machine or read_machine(device)
    workers = config.data.workers
    if workers * processes > machine.cores and "data.workers" not in set_keys:
        fit = machine.cores // processes
        per = f" per process x {processes} processes" if processes > 1 else ""
        problems.append(f"data.workers={workers}: {workers} data-loader processes{per} but this machine has "
                        f"{machine.cores} CPU core(s); --set data.workers={fit} (or --set data.workers={workers} "
                        "to keep them)")
    mixed = False
    if device is not None:
        try:
            mixed = amp_mode(config.train.amp, device)[0] is not None
        except UserError as exc:
            problems.append(str(exc))
    if device is not None and model_config is not None:
        crop = config.augment.crop
        width = _frame_width(config, videos)
        shape = RunShape(batch_size=config.train.batch_size, clip_len=config.data.clip_len,
                         height=config.data.height, width=width,
                         model_pixels=crop[0] * crop[1] if crop else config.data.height * width,
                         backbone=model_config.backbone,
                         entity_slots=config.data.entity_slots if model_config.use_entities else 0,
                         workers=workers, processes=processes, training=True, gpu=device.type == "cuda",
                         mixed_precision=mixed)
        line = memory_problem(shape, machine, "train.batch_size (raise optim.accumulate to keep the effective "
                              "batch), data.clip_len, data.height / data.width or augment.crop, data.workers, "
                              "or a lighter model.name (e.g. ugl_rny002)", "train.batch_size")
        if line:
            problems.append(line)
    if problems:
        raise PreflightError("training", problems)
    return Checked(device=device, entity_settings=settings)


def check_prediction(config: RunConfig, split: str, videos: Sequence[Video], spotter: Any, device_name: str,
                     machine: Machine | None = None) -> Checked:
    """Check a ``predict`` run before it spots anything: device, frames and
    entity stores of ``videos``, the metric's video ids and memory for the
    model's inference batch. Raises :class:`PreflightError` listing every
    problem; else returns the device."""
    from uglspot.engine.store_checks import entity_store_problems

    problems: list[str] = []
    device = None
    try:
        device = pick_device(device_name)
    except UserError as exc:
        problems.append(str(exc))
    if not videos:
        problems.append(f"{config.data.labels}/{split}.json holds no video")
    problems += rate_problems(config, videos)
    problems += frame_problems(config, videos)
    model_config, settings = spotter.model.config, spotter.settings
    if model_config.use_entities:
        if not config.data.entities:
            problems.append("this model uses entities; set data.entities to the entity store folder")
        else:
            entities = settings.entities or {}
            lines, _ = entity_store_problems(
                config.data.entities, [(v.video, expected_frames(config, v)) for v in videos], model_config,
                entities.get("prompt"), entities.get("features"),
                rates={v.video: decode_rate(config, v) for v in videos})
            problems += _first(lines, f"{config.data.entities}: and")
    problems += metric_problems(config.train.metric, videos, f"split {split}")
    if device is not None:
        machine = machine or read_machine(device)
        crop = settings.crop
        width = _frame_width(config, videos)
        shape = RunShape(batch_size=settings.batch_size, clip_len=settings.clip_len, height=config.data.height,
                         width=width, model_pixels=crop[0] * crop[1] if crop else config.data.height * width,
                         backbone=model_config.backbone, training=False, gpu=device.type == "cuda",
                         mixed_precision=device.type == "cuda")
        line = memory_problem(shape, machine, "infer.batch_size", "infer.batch_size")
        if line:
            problems.append(line)
    if problems:
        raise PreflightError("prediction", problems)
    return Checked(device=device)


def set_keys(overrides: Sequence[str]) -> set[str]:
    """The keys of ``--set KEY=VALUE`` options."""
    return {item.split("=", 1)[0].strip() for item in overrides}
