"""What a bounded lookahead costs live spotting (docs/live.md): frame mAP at
δ = 1, 2 on a demo's test matches, for each lookahead and offline, for each
trained variant of the demo.

Each test match is decoded once and pushed frame by frame through
``engine.live.LiveSpotter`` (the decisions ``uglspot spot --live`` makes),
once per lookahead; a window the model scored for one lookahead is reused by
the others (the same frames give the same scores). Offline is
``engine.infer.spot_videos`` (``uglspot spot`` / ``predict``). A live run
that waits until each frame is final ("final") must give the offline
events: its line says how many events differ and the largest score
difference (in fp32, the default here: the demo's bf16 rounds differently with the
4 windows an offline forward pass takes than with the 1 of a live one). Candidates are every event at the model's candidate threshold,
as ``predict`` and the demo score them.

    PYTHONPATH=src python benchmarks/live_lookahead.py DEMO_DIR [--lookaheads 1,2,4,8] \\
        [--variants e2e_rny002,ugl_rny002] [--plot docs/live_lookahead.png] > lookahead.jsonl

Prints one JSON line per (variant, lookahead).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch

from uglspot.data.dataset import EntityWindows, VideoFrames
from uglspot.data.labels import Event, VideoPredictions, read_class_list, read_e2e_labels
from uglspot.engine.infer import inference_dtype, load_spotter, spot_videos
from uglspot.engine.live import LiveSpotter, full_lookahead, replay, window_scorer
from uglspot.metrics.spotting import frame_map

TOLERANCES = (1, 2)


def variant_lines(root: Path, variant: str, lookaheads: list[float], precision: str) -> list[dict]:
    data = root / "dataset"
    spotter = load_spotter(root / "runs" / variant, "cpu")
    s = spotter.settings
    classes = read_class_list(data / "class.txt")
    videos = read_e2e_labels(data / "test.json", classes)
    frames = VideoFrames(data / "videos", {v.video: s.fps or v.fps for v in videos}, s.height, s.width)
    entities = EntityWindows(data / "entities", s.entity_slots) if spotter.model.config.use_entities else None
    amp = inference_dtype(s.precision, torch.device("cpu")) if precision == "model" else None
    began = time.perf_counter()
    offline = {r.video: r for r in spot_videos(spotter, videos, frames, entities, amp)}
    lines = [line_for(variant, "offline", None, videos, {k: r.record.as_predictions() for k, r in offline.items()},
                      classes, time.perf_counter() - began)]
    fps = s.fps or videos[0].fps
    score = window_scorer(spotter, amp)
    runs: dict[str | float, dict[str, VideoPredictions]] = {}  # lookahead -> video -> its events
    windows: dict[str | float, int] = {}
    seconds: dict[str | float, float] = {}
    differ, worst = 0, 0.0
    for video in videos:
        pixels = frames.read(video.video, 0, video.num_frames)  # (T, 3, H, W), decoded once
        boxes = entities.window(video.video, 0, video.num_frames) if entities is not None else None
        cache: dict[int, tuple] = {}
        for lookahead in [*lookaheads, "final"]:
            began = time.perf_counter()
            frames_ahead = None if lookahead == "final" else math.ceil(lookahead * fps)
            live = LiveSpotter(cached(score, cache), classes, s.clip_len, s.pad, s.threshold, s.nms_window,
                               frames_ahead, None, entities.vocabulary(video.video) if entities else (),
                               s.entities_per_event)
            events = replay(live, video.num_frames, lambda a, n: pixels[a:a + n],
                            None if boxes is None else (lambda a, n: {k: v[a:a + n] for k, v in boxes.items()}))
            runs.setdefault(lookahead, {})[video.video] = VideoPredictions(
                video.video, [Event(e.frame, e.label, score=e.score) for e in events])
            windows[lookahead] = windows.get(lookahead, 0) + live.windows_scored
            seconds[lookahead] = seconds.get(lookahead, 0.0) + time.perf_counter() - began
            if lookahead == "final":
                reference = offline[video.video].events
                same = [(e.frame, e.label) for e in events] == [(e.frame, e.label) for e in reference]
                differ += 0 if same else 1
                if same:
                    worst = max([worst] + [abs(a.score - b.score) for a, b in zip(events, reference)])
    for lookahead in [*lookaheads, "final"]:
        line = line_for(variant, lookahead, windows[lookahead], videos, runs[lookahead], classes, seconds[lookahead])
        line["lookahead_frames"] = (full_lookahead(s.clip_len, s.pad, s.nms_window) if lookahead == "final"
                                    else math.ceil(lookahead * fps))
        if lookahead == "final":
            line["videos_differing_from_offline"] = differ
            line["max_score_difference"] = worst
        lines.append(line)
    return lines


def cached(score, cache: dict[int, tuple]):
    """``score`` with each window's result kept by its frames' (and entities') content: the same input
    scores the same."""
    def run(frames: torch.Tensor, entities):
        digest = hashlib.sha1(frames.numpy().tobytes())
        for name in sorted(entities or {}):
            digest.update(entities[name].numpy().tobytes())
        key = digest.hexdigest()
        if key not in cache:
            cache[key] = score(frames, entities)
        return cache[key]
    return run


def line_for(variant: str, lookahead, windows, videos, predictions: dict, classes, seconds: float) -> dict:
    result = frame_map(videos, [predictions[v.video] for v in videos], classes, TOLERANCES)
    return {"variant": variant, "lookahead_s": lookahead, "map_d1": round(100 * result.map[1], 2),
            "map_d2": round(100 * result.map[2], 2), "events": sum(len(p.events) for p in predictions.values()),
            "windows": windows, "seconds": round(seconds, 1), "videos": len(videos)}


def plot(lines: list[dict], path: Path, lookaheads: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110, layout="constrained")
    offline_x = max(lookaheads) * 1.6
    for variant, colour in zip(sorted({line["variant"] for line in lines}), ("tab:blue", "tab:orange", "tab:green")):
        rows = [line for line in lines if line["variant"] == variant and isinstance(line["lookahead_s"], float)]
        rows.sort(key=lambda line: line["lookahead_s"])
        offline = next(line for line in lines if line["variant"] == variant and line["lookahead_s"] == "offline")
        for key, style in (("map_d1", "--"), ("map_d2", "-")):
            xs = [line["lookahead_s"] for line in rows] + [offline_x]
            ys = [line[key] for line in rows] + [offline[key]]
            ax.plot(xs, ys, style, marker="o", color=colour, label=f"{variant} δ={key[-1]}")
    ax.set_xscale("log", base=2)
    ticks = [*lookaheads, offline_x]
    ax.set_xticks(ticks, [f"{t:g}" for t in lookaheads] + ["offline"])
    ax.set_xlabel("lookahead (s)")
    ax.set_ylabel("frame mAP (%)")
    ax.set_title("Live spotting: frame mAP against lookahead (demo test matches)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="a `uglspot demo` output folder (runs/, dataset/)")
    parser.add_argument("--lookaheads", default="1,2,4,8", help="seconds, comma-separated")
    parser.add_argument("--variants", default="e2e_rny002,ugl_rny002")
    parser.add_argument("--plot", type=Path, help="write the plot here (PNG)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "model"), default="fp32",
                        help="fp32 (default), or the run's own (the demo's bf16: its rounding depends on how many "
                             "windows share a forward pass, 4 offline and 1 live, so 'final' differs from offline)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lookaheads = [float(v) for v in args.lookaheads.split(",")]
    lines = []
    for variant in args.variants.split(","):
        for line in variant_lines(args.demo, variant, lookaheads, args.precision):
            print(json.dumps(line), flush=True)
            lines.append(line)
    if args.plot:
        plot(lines, args.plot, lookaheads)


if __name__ == "__main__":
    main()
