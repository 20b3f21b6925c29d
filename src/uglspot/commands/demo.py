"""``uglspot demo``: the whole system on a synthetic benchmark, offline, on a CPU.

Render train/val/test matches, train the global-only variant and the UGL
variant with the same budget, spot the test matches with both, score them
(frames mAP at δ = 1 and 2) and write the HTML report. The table it prints
is the one it measured.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from uglspot.errors import UserError

ORDER = 1
VARIANTS = ("e2e_rny002", "ugl_rny002")
TOLERANCES = (1, 2)


@dataclass(frozen=True)
class DemoProfile:
    """Sizes of one demo run; everything else keeps the product defaults."""

    matches: dict[str, int]  # matches per split
    minutes: dict[str, float]  # length of each match per split
    width: int = 128
    height: int = 72
    fps: float = 8.0
    open_play_seconds: tuple[float, float] = (1.5, 5.0)  # denser incidents than the benchmark default
    clip_len: int = 32
    batch_size: int = 4
    epochs: int = 6
    epoch_frames: int = 3072  # the budget is epochs × epoch_frames training frames, the same for both variants
    lr: float = 2e-3
    warmup_epochs: float = 0.25  # a short run cannot afford the product's 3-epoch warm-up
    dilate: int = 1  # frames on each side of an event that also carry its label in training
    # One loss for both variants so the comparison measures the entities alone: E2E-Spot's softmax
    # cross-entropy (foreground weight 5) learns from random weights within the budget, where the
    # paper's focal loss (γ = 5) down-weights nearly every frame early on and barely moves.
    loss: str = "ce"
    # Mixup, colour jitter and blur regularise long runs; in a few hundred steps from scratch they
    # only slow learning down (and cost time), so the demo trains on clean clips (flips stay).
    augment: dict[str, Any] = field(default_factory=lambda: {"mixup": False, "jitter_p": 0.0, "blur_p": 0.0})
    entity_slots: int = 16
    infer_batch: int = 4
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=lambda: {"entity_source": "detector"})

    @property
    def budget_frames(self) -> int:
        return self.epochs * self.epoch_frames


DEFAULT = DemoProfile(matches={"train": 6, "val": 1, "test": 3}, minutes={"train": 3.0, "val": 0.5, "test": 2.0})
QUICK = replace(DEFAULT, matches={"train": 2, "val": 1, "test": 1}, minutes={"train": 1.0, "val": 0.5, "test": 1.5},
                batch_size=2, epochs=2, epoch_frames=640, warmup_epochs=0.1)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="render a synthetic benchmark, train global-only and UGL, compare them, write a report",
        description=(
            "Run the whole system offline on a CPU: render synthetic football matches (uglspot synth), "
            "train the global-only variant (e2e_rny002) and the UGL variant (ugl_rny002) with the same "
            "budget, spot the test matches with both, print AP per class at δ = 1 and 2 frames, and write "
            "DIR/report.html. About 10 minutes on 2 CPU cores; --quick takes about 2. See docs/demo.md."))
    parser.add_argument("--out", type=Path, default=Path("demo-run"), help="new output directory (default demo-run)")
    parser.add_argument("--quick", action="store_true", help="a smaller run for CI (about 2 minutes)")
    parser.add_argument("--seed", type=int, default=None, help="dataset and training seed (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(func=run)


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
                 "dilate": profile.dilate, "entity_slots": profile.entity_slots, "workers": 0},
        "model": {"name": variant, "options": {**(profile.model_options if uses_entities else {}),
                                                "loss": profile.loss}},
        "augment": dict(profile.augment),
        "optim": {"lr": profile.lr, "warmup_epochs": profile.warmup_epochs},
        "train": {"epochs": profile.epochs, "batch_size": profile.batch_size, "epoch_frames": profile.epoch_frames,
                  "device": "cpu", "seed": profile.seed, "tensorboard": False, "val_every": profile.epochs,
                  "amp": "off"},
        "infer": {"batch_size": profile.infer_batch, "nms_window": 1},
    }, f"demo config for {variant}")


def _spot_split(root: Path, variant: str, videos: list, profile: DemoProfile) -> list:
    """Spot every test video with the trained variant; write
    predictions/<variant>/<video>/events.json; return VideoPredictions."""
    from tqdm import tqdm

    from uglspot.data.clips import inference_windows
    from uglspot.data.dataset import EntityWindows, VideoFrames
    from uglspot.data.labels import Event, VideoPredictions
    from uglspot.engine.infer import load_spotter, spot_video
    from uglspot.io import safe_name, write_json_atomic

    spotter = load_spotter(root / "runs" / variant, "cpu")
    data = root / "dataset"
    frames = VideoFrames(data / "videos", {v.video: v.fps for v in videos}, profile.height, profile.width)
    entities = (EntityWindows(data / "entities", profile.entity_slots)
                if spotter.model.config.use_entities else None)
    predictions = []
    clip_len, pad = spotter.settings["clip_len"], spotter.settings["pad"]
    total = sum(len(inference_windows(v.num_frames, clip_len, pad)) for v in videos)
    with tqdm(total=total, desc=f"spot test ({variant})", unit="window", dynamic_ncols=True) as bar:
        for video in videos:
            read_entities = None if entities is None else (
                lambda start, count, vid=video.video: entities.window(vid, start, count))
            result = spot_video(spotter, video.video, video.num_frames, video.fps,
                                lambda start, count, vid=video.video: frames.read(vid, start, count),
                                read_entities, entities.vocabulary(video.video) if entities else (),
                                progress=lambda n: bar.update(n))
            write_json_atomic(root / "predictions" / variant / safe_name(video.video) / "events.json",
                              result.to_json())
            predictions.append(VideoPredictions(video.video, [Event(e.frame, e.label, score=e.score)
                                                              for e in result.events]))
    return predictions


def summary_table(classes: list[str], results: dict[str, Any], counts: dict[str, int]) -> str:
    """AP (%) per class at each tolerance, variants side by side, and the mean."""
    variants = list(results)
    head = f"{'class':<14}{'events':>7}" + "".join(f"{f'{v} δ={t}':>18}" for t in TOLERANCES for v in variants)
    lines = [head, "-" * len(head)]

    def cell(value: float | None) -> str:
        return f"{'–' if value is None else f'{100 * value:.1f}':>18}"

    for label in classes:
        lines.append(f"{label:<14}{counts.get(label, 0):>7}"
                     + "".join(cell(results[v].per_class[t].get(label)) for t in TOLERANCES for v in variants))
    lines.append("-" * len(head))
    lines.append(f"{'mAP':<14}{sum(counts.values()):>7}"
                 + "".join(cell(results[v].map[t]) for t in TOLERANCES for v in variants))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from uglspot.data.labels import read_class_list, read_e2e_labels
    from uglspot.synth import SynthConfig, generate_dataset
    from uglspot.engine.train import train
    from uglspot.io import write_json_atomic
    from uglspot.metrics.spotting import frame_map
    from uglspot.report import build_report, load_inputs

    profile = QUICK if args.quick else DEFAULT
    if args.seed is not None:
        profile = replace(profile, seed=args.seed)
    root: Path = args.out
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(f"{root}: already exists and is not empty; pass a new --out (a demo never overwrites)")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    data = root / "dataset"
    cfg = SynthConfig(width=profile.width, height=profile.height, fps=profile.fps,
                      open_play_seconds=profile.open_play_seconds)
    generate_dataset(data, cfg, profile.matches, profile.seed, workers=min(2, os.cpu_count() or 1),
                     minutes=profile.minutes)
    timings["render"] = time.perf_counter() - t

    classes = read_class_list(data / "class.txt")
    test = read_e2e_labels(data / "test.json", classes)
    results = {}
    predictions = {}
    for variant in VARIANTS:
        t = time.perf_counter()
        train(_train_config(root, variant, profile))
        timings[f"train {variant}"] = time.perf_counter() - t
        t = time.perf_counter()
        predictions[variant] = _spot_split(root, variant, test, profile)
        timings[f"spot {variant}"] = time.perf_counter() - t
        results[variant] = frame_map(test, predictions[variant], classes, TOLERANCES)

    t = time.perf_counter()
    write_json_atomic(root / "report-inputs.json", {"truth": "dataset/test.json", "classes": "dataset/class.txt",
                                                     "videos": "dataset/videos"})
    inputs = load_inputs(root, title="uglspot demo: global-only (e2e_rny002) vs UGL (ugl_rny002), synthetic test")
    document, _ = build_report(inputs, tolerances=TOLERANCES)
    from uglspot.io import write_text_atomic

    write_text_atomic(root / "report.html", document)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started

    counts = {c: sum(1 for v in test for e in v.events if e.label == c) for c in classes}
    table = summary_table(classes, results, counts)
    write_json_atomic(root / "summary.json", {
        "profile": "quick" if args.quick else "default", "budget_frames": profile.budget_frames,
        "tolerances": list(TOLERANCES), "seconds": {k: round(v, 1) for k, v in timings.items()},
        "results": {v: r.to_json() for v, r in results.items()}})
    print()
    print(f"Test split: {len(test)} matches, {sum(counts.values())} events; both variants trained on "
          f"{profile.budget_frames} frames (clips of {profile.clip_len}, {profile.width}x{profile.height} px).")
    print("AP (%) per class, E2E-Spot frame mAP at δ frames:")
    print(table)
    print(f"\nreport: {root / 'report.html'}   took {timings['total'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in timings.items() if k != 'total')})")
    return 0
