"""How each rule for giving a class its head does on new matches: a demo
run's saved UGL weights, re-spotted (docs/demo.md, "The heads chosen on
held-out matches").

Renders ``--held-out`` extra matches of the demo's profile and seed (match
indices from 900 on, never trained, validated or tested on) into
OUT/held-out, spots them once with every class read from the global head
and once from the entity side, spots the demo's test matches from the
entity side (its global-head predictions are the global-only variant's,
already in DEMO/predictions), then prints one JSON line per rule: the head
each class reads and the test AP per class at δ = 2, the scene and card
means and mAP. Rules:

- ``gate``: the trained gate's picks (the recipe before head_choice);
- ``argmax``: each class from the head with the best held-out AP (mean
  over δ = 1, 2, 4), ties to the gate;
- ``bootstrap_global``: the global head, unless the entity side wins on
  95 % of bootstrap resamples of the held-out matches;
- ``bootstrap_gate``: the gate's pick, unless the other head wins on 95 %
  of them (``head_choice: validation``, the recipe).

    PYTHONPATH=src python benchmarks/head_choice.py DEMO OUT [--held-out 3]

DEMO is a finished ``uglspot demo --out DEMO`` folder (any profile); it is
only read. About 4 minutes for a long-profile run on one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from uglspot.app import demo
from uglspot.data.labels import read_class_list, read_e2e_labels, read_predictions
from uglspot.engine import head_choice
from uglspot.engine.infer import inference_dtype, load_spotter, spot_videos
from uglspot.metrics.spotting import frame_map
from uglspot.synth import SynthConfig
from uglspot.synth.writers import write_match

FIRST_INDEX = 900


def held_out_matches(profile: demo.DemoProfile, out: Path, count: int) -> list:
    cfg = SynthConfig(width=profile.width, height=profile.height, fps=profile.fps,
                      open_play_seconds=profile.open_play_seconds, incidents=dict(profile.incidents),
                      yellow_card=profile.yellow_card, red_card=profile.red_card, minutes=profile.minutes["test"])
    return [write_match(out, f"held_{k:03d}", cfg, profile.seed, FIRST_INDEX + k) for k in range(count)]


def spot(spotter, videos: list, videos_dir: Path, entities_dir: Path, profile: demo.DemoProfile, head: int) -> list:
    """Each video's predictions with every class read from ``head``."""
    from uglspot.data.dataset import EntityWindows, VideoFrames

    spotter.model.choose_heads([head] * (len(spotter.classes) + 1))
    frames = VideoFrames(videos_dir, {v.video: v.fps for v in videos}, profile.height, profile.width)
    entities = EntityWindows(entities_dir, profile.entity_slots)
    dtype = inference_dtype(spotter.settings.precision, torch.device("cpu"))
    return [r.record.as_predictions() for r in spot_videos(spotter, videos, frames, entities, dtype, explain=False)]


def argmax_rule(videos, per_head, classes, gate) -> list[int]:
    choice = list(gate)
    for index, name in enumerate(classes, 1):
        aps = {}
        for head, predictions in per_head.items():
            result = frame_map(videos, predictions, classes, head_choice.SELECTION_TOLERANCES)
            values = [result.per_class[t][name] for t in head_choice.SELECTION_TOLERANCES]
            if None not in values:
                aps[head] = float(np.mean(values))
        if aps:
            choice[index] = max(aps, key=lambda h: (aps[h], h == gate[index]))
    return choice


RULES = {
    "gate": lambda videos, per_head, classes, gate: list(gate),
    "argmax": argmax_rule,
    "bootstrap_global": lambda videos, per_head, classes, gate: head_choice.head_per_class(
        videos, per_head, classes, [0] * len(gate)),
    "bootstrap_gate": head_choice.head_per_class,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="a finished `uglspot demo` folder (read only)")
    parser.add_argument("out", type=Path, help="a new folder for the held-out matches")
    parser.add_argument("--held-out", type=int, default=3, help="held-out matches to render (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary = json.loads((args.demo / "summary.json").read_text())
    profile = replace(demo.PROFILES[summary["profile"]], seed=summary["seed"], device="cpu")
    data = args.demo / "dataset"
    classes = read_class_list(data / "class.txt")
    test = read_e2e_labels(data / "test.json", classes)
    t = time.perf_counter()
    held = held_out_matches(profile, args.out / "held-out", args.held_out)
    render_s = time.perf_counter() - t
    spotter = load_spotter(args.demo / "runs" / demo.UGL)
    t = time.perf_counter()
    per_head = {head: spot(spotter, held, args.out / "held-out" / "videos", args.out / "held-out" / "entities",
                           profile, head) for head in spotter.model.pick_candidates}
    test_side = spot(spotter, test, data / "videos", data / "entities", profile, 1)
    spot_s = time.perf_counter() - t
    test_ap = {0: frame_map(test, read_predictions(args.demo / "predictions" / demo.GLOBAL / "predictions.json"),
                            classes, (2,)).per_class[2],
               1: frame_map(test, test_side, classes, (2,)).per_class[2]}
    spotter.model.choose_heads(None)
    gate = spotter.model.gate_choice()
    cards = [c for c in classes if c in demo.CARD_CLASSES]
    for rule, choose in RULES.items():
        choice = choose(held, per_head, classes, gate)
        ap = {c: test_ap[choice[i]][c] for i, c in enumerate(classes, 1)}
        scene = [ap[c] for c in classes if c not in cards]
        print(json.dumps({
            "profile": profile.name, "seed": profile.seed, "held_out": args.held_out, "rule": rule,
            "heads": {c: head_choice.HEAD_NAMES[choice[i]] for i, c in enumerate(classes, 1)},
            "ap_delta2": {c: round(100 * v, 1) for c, v in ap.items()},
            "scene": round(100 * float(np.mean(scene)), 1), "cards": round(100 * float(np.mean([ap[c] for c in cards])), 1),
            "map_delta2": round(100 * float(np.mean(list(ap.values()))), 1),
            "render_s": round(render_s), "spot_s": round(spot_s)}), flush=True)


if __name__ == "__main__":
    main()
