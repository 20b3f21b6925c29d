"""The demo: the whole system on a synthetic benchmark, offline, on a CPU.

Render train/val/test matches, train the UGL variant and take the
global-only variant from its isolated global path (or, for a recipe without
one, train both with the same budget), spot the test matches with both,
score them (frames mAP at δ = 1 and 2) and write the HTML report.
:func:`run_demo` returns what it measured (``uglspot demo`` prints it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from uglspot.errors import UserError

VARIANTS = ("e2e_rny002", "ugl_rny002")
GLOBAL, UGL = VARIANTS
TOLERANCES = (1, 2)


@dataclass(frozen=True)
class DemoProfile:
    """Sizes of one demo run; everything else keeps the product defaults."""

    name: str
    matches: dict[str, int]  # matches per split
    minutes: dict[str, float]  # length of each match per split
    width: int = 128
    height: int = 72
    fps: float = 8.0
    open_play_seconds: tuple[float, float] = (1.5, 5.0)  # denser incidents than the benchmark default
    # More fouls, and a card at most of them, so the test split holds enough card events to measure
    # the card classes (at least 30 each in the default profile) in a few minutes of spotting. The
    # cards themselves (size, time up, crowd specks, detector recall and noise) are the benchmark's.
    incidents: dict[str, float] = field(default_factory=lambda: {
        "throw-in": 0.22, "shot": 0.18, "foul": 0.5, "corner": 0.1})
    yellow_card: float = 0.42
    red_card: float = 0.42
    clip_len: int = 32
    batch_size: int = 4
    epochs: int = 6
    epoch_frames: int = 3840  # the budget is epochs × epoch_frames training frames, the same for both variants
    lr: float = 2e-3
    warmup_epochs: float = 0.25  # a short run cannot afford the product's 3-epoch warm-up
    dilate: int = 1  # frames on each side of an event that also carry its label in training
    # Half the clips are drawn around a labelled event, classes balanced (E2E-Spot's fg_upsample):
    # with uniform clips a rare class is seen in a handful of clips over the whole run.
    foreground: float = 0.5
    # One loss for both variants so the comparison measures the entities alone: E2E-Spot's softmax
    # cross-entropy (foreground weight 5) learns from random weights within the budget, where the
    # paper's focal loss (γ = 5) down-weights nearly every frame early on and barely moves.
    loss: str = "ce"
    # Mixup, colour jitter and blur regularise long runs; in a few hundred steps from scratch they
    # only slow learning down (and cost time), so the demo trains on clean clips (flips stay).
    augment: dict[str, Any] = field(default_factory=lambda: {"mixup": False, "jitter_p": 0.0, "blur_p": 0.0})
    entity_slots: int = 16
    # Spot the two variants (and train both, when both are trained) at once, one process each on half the
    # cores (when there are two or more): about 1.3x faster on 2 cores than one after the other.
    side_by_side: bool = True
    # With the UGL recipe's isolated global path, train the UGL variant alone (on all the threads) and take
    # the global-only run from its backbone and global head: the weights training the global-only variant
    # on as many threads would give, bit for bit (uglspot.engine.global_only). False trains both.
    global_from_ugl: bool = True
    infer_batch: int = 4
    # bf16 autocast for training and spotting on a CPU that runs it natively (AVX512-BF16, AMX):
    # about 1.4x faster here; fp32 elsewhere (docs/demo.md).
    bf16: bool = True
    # Where both variants train and spot: "cpu", or a CUDA device (``--device``; autocast there).
    device: str = "cpu"
    # Options given to both variants' models (e.g. a smaller timm backbone for the learning test).
    shared_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    # Too little training for its numbers to compare the variants: it checks that the pipeline runs.
    smoke_test: bool = False
    # The UGL variant is ugl_rny002 with the product's recipe (a selection that learns, the entity
    # branch's own loss, an isolated global head mixed per class: docs/model.md), reading the detector's
    # stored box features with each box's place, size and score.
    model_options: dict[str, Any] = field(default_factory=lambda: {
        "entity_source": "detector", "entity_geometry": True})

    @property
    def budget_frames(self) -> int:
        return self.epochs * self.epoch_frames

    @property
    def derives_global(self) -> bool:
        """Whether the global-only run is taken from the UGL run (``global_from_ugl`` and a UGL model
        whose global path trains apart from its entity branch)."""
        from uglspot.model.spotter import build_config

        options = {**self.shared_options, **self.model_options, "loss": self.loss}
        return self.global_from_ugl and build_config(UGL, 1, **options).isolate_global

    @property
    def steps(self) -> int:
        """Optimiser steps per variant."""
        return self.epochs * (self.epoch_frames // (self.clip_len * self.batch_size))

    def notes(self) -> list[str]:
        """What a reader of the table or report must know about this run: the
        training budget, and for a smoke test that its numbers are noise."""
        notes = [f"Profile {self.name}, seed {self.seed}: each variant trained {self.steps} steps on "
                 f"{self.budget_frames:,} frames (clips of {self.clip_len} × batch {self.batch_size}, "
                 f"{self.width}×{self.height} px at {self.fps:g} fps)."]
        if self.derives_global:
            notes.append(f"The global-only model is the UGL model's isolated backbone and global head, trained "
                         f"once: the weights {GLOBAL} trained alone with this seed would have, bit for bit.")
        if self.smoke_test:
            notes.append(f"Smoke test: {self.steps} steps check that the pipeline runs end to end; at this size the "
                         "AP figures are noise and say nothing about the variants. Compare them with the default "
                         "profile (uglspot demo) or --profile long.")
        return notes


# The validation matches are where the UGL variant chooses each class's head (engine.head_choice).
DEFAULT = DemoProfile("default", matches={"train": 12, "val": 2, "test": 10},
                      minutes={"train": 3.0, "val": 3.0, "test": 3.0})
LONG = replace(DEFAULT, name="long", matches={"train": 40, "val": 3, "test": 16}, epochs=16, batch_size=8,
               epoch_frames=7680)
QUICK = replace(DEFAULT, name="quick", matches={"train": 2, "val": 1, "test": 1},
                minutes={"train": 1.0, "val": 0.5, "test": 1.5}, batch_size=2, epochs=2, epoch_frames=640,
                warmup_epochs=0.1, smoke_test=True)
PROFILES = {p.name: p for p in (DEFAULT, LONG, QUICK)}


def demo_profile(name: str = "default", seed: int | None = None, device: str = "auto") -> DemoProfile:
    """The named profile (``PROFILES``) with ``seed`` (None: the profile's)
    on ``device`` (auto, cpu, cuda, cuda:N; refused at once when absent)."""
    from uglspot.engine.runtime import pick_device

    profile = PROFILES[name]
    if seed is not None:
        profile = replace(profile, seed=seed)
    return replace(profile, device=str(pick_device(device)))


def _train_config(root: Path, variant: str, profile: DemoProfile) -> Any:
    from uglspot.config import from_dict
    from uglspot.engine.config import RunConfig

    data = root / "dataset"
    uses_entities = variant.startswith("ugl")
    return from_dict(RunConfig, {
        "dataset": "synthetic",
        "out": str(root / "runs" / variant),
        "data": {"labels": str(data), "videos": str(data / "videos"),
                 "entities": str(data / "entities") if uses_entities else None,
                 "height": profile.height, "width": profile.width, "clip_len": profile.clip_len,
                 "dilate": profile.dilate, "entity_slots": profile.entity_slots, "workers": 0,
                 "foreground": profile.foreground},
        "model": {"name": variant, "options": {**profile.shared_options,
                                                **(profile.model_options if uses_entities else {}),
                                                "loss": profile.loss}},
        "augment": dict(profile.augment),
        "optim": {"lr": profile.lr, "warmup_epochs": profile.warmup_epochs},
        "train": {"epochs": profile.epochs, "batch_size": profile.batch_size, "epoch_frames": profile.epoch_frames,
                  "device": profile.device, "seed": profile.seed, "tensorboard": False, "val_every": profile.epochs,
                  "amp": _train_amp(profile)},
        "infer": {"batch_size": profile.infer_batch, "nms_window": 1},
    }, f"demo config for {variant}")


def _on_cpu(profile: DemoProfile) -> bool:
    return profile.device == "cpu"


def _use_bf16(profile: DemoProfile) -> bool:
    """bf16 autocast on a CPU that runs it natively (on CUDA the engine's ``auto`` decides)."""
    from uglspot.engine.runtime import cpu_has_bf16

    return profile.bf16 and _on_cpu(profile) and cpu_has_bf16()


def _train_amp(profile: DemoProfile) -> str:
    if not _on_cpu(profile):
        return "auto" if profile.bf16 else "off"
    return "bf16" if _use_bf16(profile) else "off"


def _spot_split(root: Path, variant: str, videos: list, profile: DemoProfile,
                on_video: Callable[[int], None] | None = None) -> tuple[list, Any]:
    """Spot every test video with the trained variant (``_spot_videos``) and
    write all of them to predictions/<variant>/predictions.json (E2E-Spot
    form, as ``spot`` writes its folder); return their predictions and, for
    a variant with entities, the share of card boxes its attention kept."""
    from uglspot.data.labels import write_predictions

    predictions, kept = _spot_videos(root, variant, videos, profile, on_video=on_video)
    write_predictions(predictions, root / "predictions" / variant / "predictions.json")
    return predictions, kept


def _spot_videos(root: Path, variant: str, videos: list, profile: DemoProfile, spotter: Any = None,
                 on_video: Callable[[int], None] | None = None) -> tuple[list, Any]:
    """Spot ``videos`` with the trained variant (``spotter``, or loaded from
    its run); write predictions/<variant>/<video>/events.json for each;
    return their VideoPredictions, in order, and for a variant with
    entities the card boxes its attention kept (a KeptShare)."""
    from uglspot.data.dataset import EntityWindows, VideoFrames
    from uglspot.engine.infer import inference_dtype, load_spotter, spot_videos
    from uglspot.io import safe_name, write_json_atomic
    from uglspot.synth.diagnostics import KeptShare

    spotter = spotter or load_spotter(root / "runs" / variant, profile.device)
    data = root / "dataset"
    frames = VideoFrames(data / "videos", {v.video: v.fps for v in videos}, profile.height, profile.width)
    entities = (EntityWindows(data / "entities", profile.entity_slots)
                if spotter.model.config.use_entities else None)
    predictions = []
    kept = KeptShare() if entities is not None else None
    amp_dtype = inference_dtype(spotter.settings.precision, next(spotter.model.parameters()).device)
    desc = None if on_video else f"spot {variant} test"
    if on_video is not None:
        on_video(0)
    for done, result in enumerate(spot_videos(spotter, videos, frames, entities, amp_dtype, desc=desc), 1):
        if on_video is not None:
            on_video(done)
        write_json_atomic(root / "predictions" / variant / safe_name(result.video) / "events.json", result.to_json())
        predictions.append(result.record.as_predictions())
        if kept is not None and result.scores.attention is not None:
            kept = kept.add(_kept_cards(entities, result.source, result.scores.attention))
    return predictions, kept


def _kept_cards(entities: Any, video: Any, attention: Any) -> Any:
    """How many true card boxes (and crowd false positives) the attention kept at the video's card events."""
    from uglspot.synth.diagnostics import KeptShare, kept_card_boxes

    store = entities.store(video.video)
    slots = attention.shape[1]
    truth = store.truth_window(0, video.num_frames, slots)
    if truth is None:
        return KeptShare()
    window = store.window(0, video.num_frames, slots)
    return kept_card_boxes(video.events, attention, window["cls"], window["mask"], truth)


CARD_CLASSES = ("Yellow card", "Red card")


def summary_table(classes: list[str], results: dict[str, Any], counts: dict[str, int]) -> str:
    """AP (%) per class at each tolerance, variants side by side (with the
    difference, second minus first, when there are two), and the mean."""
    from uglspot.report.ap_table import ap_rows

    variants = list(results)
    diff = len(variants) == 2
    columns = [f"{v} δ={t}" for t in TOLERANCES for v in variants]
    if diff:
        columns = [c for t in TOLERANCES for c in [f"{v} δ={t}" for v in variants] + [f"Δ δ={t}"]]
    head = f"{'class':<14}{'events':>7}" + "".join(f"{c:>18}" for c in columns)
    lines = [head, "-" * len(head)]

    def cells(values: tuple[float | None, ...], delta: float | None) -> str:
        text = "".join(f"{'–' if v is None else f'{100 * v:.1f}':>18}" for v in values)
        return text + (f"{'–' if delta is None else f'{100 * delta:+.1f}':>18}" if diff else "")

    *per_class, mean = ap_rows(results, classes, counts, TOLERANCES)
    for row in per_class:
        lines.append(f"{row.label:<14}{row.events:>7}" + "".join(cells(row.values[t], row.deltas[t]) for t in TOLERANCES))
    lines.append("-" * len(head))
    lines.append(f"{mean.label:<14}{mean.events:>7}" + "".join(cells(mean.values[t], mean.deltas[t]) for t in TOLERANCES))
    return "\n".join(lines)


def class_group_ap(result: Any, labels: Sequence[str], tolerance: int = 2) -> float | None:
    """Mean AP of ``labels`` (those with ground truth) at one tolerance."""
    values = [result.per_class[tolerance][c] for c in labels if result.per_class[tolerance].get(c) is not None]
    return sum(values) / len(values) if values else None


def card_sentence(results: dict[str, Any], kept: dict[str, Any]) -> str:
    """One sentence with the measured card-class gain of the entity branch (δ = 2)."""
    (base, base_result), (ugl, ugl_result) = list(results.items())[:2]
    b, u = class_group_ap(base_result, CARD_CLASSES), class_group_ap(ugl_result, CARD_CLASSES)
    if b is None or u is None:
        return "The test split has no card event, so the card classes were not measured."
    verb = "ahead of" if u > b else "behind" if u < b else "level with"
    text = (f"Card classes (Yellow, Red; mean AP at δ = 2): {ugl} {100 * u:.1f}, {base} {100 * b:.1f}: "
            f"the entity branch is {verb} the global-only model by {100 * abs(u - b):.1f} points.")
    share = kept.get(ugl)
    if share is not None and share.true_share is not None:
        false = ("no card-coloured false positive was there" if share.false_share is None else
                 f"and {100 * share.false_share:.0f}% of the {share.false_total} card-coloured false positives there")
        text += (f" Its attention kept {100 * share.true_share:.0f}% of the {share.true_total} true card boxes "
                 f"at card events ({false}).")
    return text


@dataclass
class DemoOutcome:
    """What one demo run measured (also written to ``DIR/summary.json``)."""

    results: dict[str, Any]  # variant -> FrameMapResult on the test split
    kept: dict[str, Any]  # variant -> KeptShare (None without entities)
    counts: dict[str, int]  # test events per class
    test_videos: int
    table: str
    finding: str
    seconds: dict[str, float]
    notes: list[str]  # what a reader must know (the profile's notes, the UGL variant's heads)


@dataclass
class VariantOutcome:
    """One variant trained and spotted: its test predictions, the card boxes
    its attention kept (None without entities) and the seconds each stage took."""

    predictions: list
    kept: Any
    seconds: dict[str, float]


def _run_variant(root: Path, variant: str, profile: DemoProfile, test: list, train: bool = True) -> VariantOutcome:
    """Train ``variant`` (unless ``train`` is false: its run is there) and
    spot the test split with it, in this process."""
    seconds = {f"train {variant}": _train(root, variant, profile)} if train else {}
    t = time.perf_counter()
    predictions, kept = _spot_split(root, variant, test, profile)
    seconds[f"spot {variant}"] = time.perf_counter() - t
    return VariantOutcome(predictions, kept, seconds)


def _train(root: Path, variant: str, profile: DemoProfile, hooks: Sequence[Any] = ()) -> float:
    """Train ``variant`` into runs/<variant>; return the seconds it took."""
    from uglspot.engine.train import train

    t = time.perf_counter()
    train(_train_config(root, variant, profile), hooks=hooks)
    return time.perf_counter() - t


def _derive_global(root: Path, profile: DemoProfile) -> float:
    """Write the global-only variant's run from the trained UGL run's
    isolated global path (``uglspot.engine.global_only``); return the
    seconds it took (its validation pass)."""
    from uglspot.engine.global_only import write_global_only_run

    t = time.perf_counter()
    write_global_only_run(_train_config(root, UGL, profile), _train_config(root, GLOBAL, profile))
    return time.perf_counter() - t


def _quiet_worker(threads: int) -> None:
    """Start of a side-by-side worker process: its own torch threads and no
    bars of its own (the parent draws them from what arrives on the queue).
    Errors still reach the parent: the pool sends them with the result."""
    import signal
    import sys

    sys.stderr = open(os.devnull, "w")  # the engine's and spotter's bars write here
    if sys.platform.startswith("linux"):  # end with the demo, even when only the demo is killed
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    import torch

    torch.set_num_threads(threads)


def _train_job(root: Path, variant: str, profile: DemoProfile, queue: Any) -> float:
    """Train ``variant`` in a worker process, putting (variant, steps done)
    on ``queue``; return the seconds it took."""
    return _train(root, variant, profile, [lambda progress, after: queue.put((variant, progress.step))])


_WORKER_SPOTTERS: dict[tuple[str, str], Any] = {}  # a worker process's loaded variants, by (root, variant)


def _spot_job(root: Path, variant: str, video: Any, profile: DemoProfile, queue: Any) -> tuple[Any, Any, float]:
    """Spot one test video in a worker process: its VideoPredictions, the
    card boxes kept (None without entities) and the seconds it took. The
    variant is loaded once per worker."""
    from uglspot.engine.infer import load_spotter

    t = time.perf_counter()
    key = (str(root), variant)
    if key not in _WORKER_SPOTTERS:
        _WORKER_SPOTTERS[key] = load_spotter(root / "runs" / variant, profile.device)
    (predictions,), kept = _spot_videos(root, variant, [video], profile, _WORKER_SPOTTERS[key], lambda done: None)
    return predictions, kept, time.perf_counter() - t


def _side_by_side(root: Path, profile: DemoProfile, test: list, threads: int,
                  train: Sequence[str] = VARIANTS) -> dict[str, VariantOutcome]:
    """Both variants at once in two processes, each on half of the
    ``threads``: the demo's small models use two cores better as two runs
    of one thread than as one run of two (docs/demo.md). Each variant of
    ``train`` is trained as one job (the others' runs are there already);
    when it ends, each of its test videos becomes a job of its own, so the
    process that is free first spots the other variant's videos too
    instead of idling. Every job runs on the same number of threads and
    each run is seeded alike, so what a variant learns and spots depends
    neither on the other nor on which process took a video."""
    from uglspot.app.pool import run_in_processes
    from uglspot.data.labels import write_predictions
    from uglspot.progress import progress_bar

    bars = {v: progress_bar(f"train {v}", profile.steps, "step", position=i) for i, v in enumerate(train)}
    predictions: dict[str, list] = {v: [None] * len(test) for v in VARIANTS}
    kept: dict[str, Any] = dict.fromkeys(VARIANTS)
    seconds: dict[str, float] = {f"spot {v}": 0.0 for v in VARIANTS}
    order: list[tuple[str, int | None]] = [(v, None) for v in train]  # each job's variant and test video, or
    # None for its training, in job order

    def spot_jobs(*variants: str) -> list:  # the videos of several variants taken in turn, so their bars move together
        for variant in variants:
            bars[variant] = progress_bar(f"spot {variant} test", len(test), "video",
                                         position=VARIANTS.index(variant))
        order.extend((variant, i) for i in range(len(test)) for variant in variants)
        return [(_spot_job, (root, variant, video, profile)) for video in test for variant in variants]

    def trained(message: tuple[str, int]) -> None:
        variant, steps = message
        bars[variant].update(steps - bars[variant].n)

    def ended(index: int, result: Any) -> list | None:
        variant, i = order[index]
        if i is None:  # a variant's training: its test videos join the queue
            seconds[f"train {variant}"] = result
            bars[variant].close()
            return spot_jobs(variant)
        predictions[variant][i], share, took = result
        kept[variant] = share if kept[variant] is None else kept[variant].add(share)
        seconds[f"spot {variant}"] += took
        bars[variant].update(1)
        return None

    jobs = [(_train_job, (root, v, profile)) for v in train] + spot_jobs(*(v for v in VARIANTS if v not in train))
    try:
        run_in_processes(jobs, len(VARIANTS), trained, ended,
                         initializer=_quiet_worker, initargs=(max(1, threads // len(VARIANTS)),))
    finally:
        for bar in bars.values():
            bar.close()
    for variant in VARIANTS:
        write_predictions(predictions[variant], root / "predictions" / variant / "predictions.json")
    return {v: VariantOutcome(predictions[v], kept[v], {k: t for k, t in seconds.items() if k.endswith(v)})
            for v in VARIANTS}


def run_demo(root: str | Path, profile: DemoProfile = QUICK, report: bool = True,
             threads: int | None = None) -> DemoOutcome:
    """Render, train both variants, spot, score, write the report and
    ``summary.json`` into ``root`` (a new or empty folder: a demo never
    overwrites); return what was measured. ``threads``: torch CPU threads
    to set first (None: leave them as they are)."""
    from uglspot.lock import new_output

    root = Path(root)
    with new_output(root, "demo", f"{root}: already exists and is not empty; pass a new --out (a demo never "
                                  "overwrites)"):
        return _run_demo(root, profile, report, threads)


def _run_demo(root: Path, profile: DemoProfile, report: bool, threads: int | None) -> DemoOutcome:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    from uglspot.data.labels import read_class_list, read_e2e_labels
    from uglspot.io import write_json_atomic, write_text_atomic
    from uglspot.metrics.spotting import frame_map
    from uglspot.synth import SynthConfig, generate_dataset

    started = time.perf_counter()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    data = root / "dataset"
    cfg = SynthConfig(width=profile.width, height=profile.height, fps=profile.fps,
                      open_play_seconds=profile.open_play_seconds, incidents=dict(profile.incidents),
                      yellow_card=profile.yellow_card, red_card=profile.red_card)
    generate_dataset(data, cfg, profile.matches, profile.seed, workers=min(2, os.cpu_count() or 1),
                     minutes=profile.minutes)
    timings["render"] = time.perf_counter() - t

    classes = read_class_list(data / "class.txt")
    test = read_e2e_labels(data / "test.json", classes)
    threads = torch.get_num_threads()
    train: tuple[str, ...] = VARIANTS
    if profile.derives_global:  # one training on every thread gives both variants
        timings[f"train {UGL}"] = _train(root, UGL, profile)
        timings[f"derive {GLOBAL}"] = _derive_global(root, profile)
        train = ()
    if profile.side_by_side and threads >= 2 and _on_cpu(profile):
        variants = _side_by_side(root, profile, test, threads, train)
    else:
        variants = {v: _run_variant(root, v, profile, test, train=v in train) for v in VARIANTS}
    results = {v: frame_map(test, o.predictions, classes, TOLERANCES) for v, o in variants.items()}
    kept = {v: o.kept for v, o in variants.items()}
    for o in variants.values():
        timings.update(o.seconds)

    heads = _chosen_heads(root)
    notes = profile.notes() + ([heads_sentence(heads)] if heads else [])
    if report:
        from uglspot.report import build_report, load_inputs

        t = time.perf_counter()
        write_json_atomic(root / "report-inputs.json", {"truth": "dataset/test.json",
                                                         "classes": "dataset/class.txt", "videos": "dataset/videos"})
        inputs = load_inputs(root, title="uglspot demo: global-only (e2e_rny002) vs UGL (ugl_rny002), "
                                         "synthetic test")
        inputs.notes = notes
        document, _ = build_report(inputs, tolerances=TOLERANCES)
        write_text_atomic(root / "report.html", document)
        timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started

    counts = {c: sum(1 for v in test for e in v.events if e.label == c) for c in classes}
    outcome = DemoOutcome(results, kept, counts, len(test), summary_table(classes, results, counts),
                          card_sentence(results, kept), timings, notes)
    write_json_atomic(root / "summary.json", {
        "profile": profile.name, "seed": profile.seed, "budget_frames": profile.budget_frames,
        "steps": profile.steps, "smoke_test": profile.smoke_test, "global_only_from_ugl": profile.derives_global,
        "tolerances": list(TOLERANCES), "seconds": {k: round(v, 1) for k, v in timings.items()},
        "events": counts, "results": {v: r.to_json() for v, r in results.items()},
        "card_boxes_kept": {v: k.to_json() for v, k in kept.items() if k is not None},
        "ugl_heads": heads, "finding": outcome.finding})
    return outcome


def _chosen_heads(root: Path) -> dict[str, str] | None:
    """The heads the UGL variant's validation chose per class (None: its gate's picks)."""
    from uglspot.engine.infer import model_directory, read_inference_settings

    return read_inference_settings(model_directory(root / "runs" / UGL)).head_choice


def heads_sentence(heads: dict[str, str]) -> str:
    """Which classes the UGL variant reads from which head, in one sentence."""
    side = {"global": "the global head", "fused": "the entity side", "entity": "the entity classifier"}
    parts = [f"{', '.join(c for c, h in heads.items() if h == head)} from {name}"
             for head, name in side.items() if head in heads.values()]
    return f"The UGL variant reads {'; '.join(parts)}: the heads its validation matches chose (head_choice)."
