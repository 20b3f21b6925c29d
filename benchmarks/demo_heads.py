"""The demo's UGL variant alone, and each head of the same weights: how the
output rule changes the scene and card classes (docs/demo.md, "The UGL
recipe, measured").

Renders a demo profile's dataset (or reuses OUT/dataset), trains the demo's
UGL variant into OUT/runs/ugl_rny002 on one thread (or reuses it), then
spots the test split once per rule and prints one JSON line per rule (AP
per class at δ = 2, the scene and card means, mAP, the share of true card
boxes kept, seconds). Rules, all on the same weights:

- ``gate``: the model as trained (its per-class gate over the heads);
- ``G``: the global head alone: with ``isolate_global`` this is the
  global-only model with the same seed bit for bit, so its line is the
  global-only variant's result without training it;
- ``pick``: each class from the one head its trained gate weighs most;
- ``mean``: the plain mean of the heads' logits;
- ``F`` / ``E``: the fused head alone / the entity classifier alone;
- ``pickFE``: ``head_mix: pick_ensemble`` (the recipe): as ``pick``, but
  where the gate picks the fused head or the entity classifier the class
  takes its probability from the mean of their two logits; where it picks
  the global head, exactly as ``pick``;
- ``pickFEw``: as ``pickFE``, with the two entity-side logits weighted by
  the gate's own weights for the class (renormalised over the two).

    PYTHONPATH=src python benchmarks/demo_heads.py long 1 OUT [--rules gate,G,mean]

Two of these side by side (one thread each) give two seeds in the time of
one demo run on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from uglspot.app import demo
from uglspot.data.labels import read_class_list, read_e2e_labels
from uglspot.engine import infer
from uglspot.engine.train import train
from uglspot.metrics.spotting import frame_map
from uglspot.model.spotter import GATE_SCALE
from uglspot.synth import SynthConfig, generate_dataset

VARIANT = "ugl_rny002"
HEAD_INDEX = {"G": 0, "F": 1, "E": 2}


def render(profile: demo.DemoProfile, data: Path) -> None:
    cfg = SynthConfig(width=profile.width, height=profile.height, fps=profile.fps,
                      open_play_seconds=profile.open_play_seconds, incidents=dict(profile.incidents),
                      yellow_card=profile.yellow_card, red_card=profile.red_card)
    generate_dataset(data, cfg, profile.matches, profile.seed, workers=1, minutes=profile.minutes,
                     show_progress=False)


def loader_for(rule: str):
    """load_spotter with the output rule applied to the loaded model."""
    load = infer.load_spotter

    def load_with_rule(path, device="cpu"):
        spotter = load(path, device)
        model = spotter.model
        if rule == "mean":
            model.head_gate = None
            model.config.head_mix = "mean"
        elif rule in ("gate", "pick"):
            model.config.head_mix = rule
        elif rule == "pickFE":  # the product's rule, by the name the docs' tables use
            model.config.head_mix = "pick_ensemble"
        elif rule == "pickFEw":
            model.config.head_mix = "pick"
            mixed, gate = model._mixed, model.head_gate.detach().float()

            def entity_side_weighted(global_logits, logits, entity_logits):
                g, f, e = mixed(global_logits, logits, entity_logits)
                w = torch.softmax(GATE_SCALE * gate, dim=0)  # the gate's soft weights (S, K+1)
                w_f = (w[1] / (w[1] + w[2])).to(f.device)
                both = w_f * f + (1 - w_f) * e
                return [g, both, both]

            model._mixed = entity_side_weighted
        elif rule in HEAD_INDEX:  # a gate of exactly 1 on one head and 0 on the others
            theta = torch.full((model.mixed_heads, model.config.num_classes + 1), -100.0)
            theta[HEAD_INDEX[rule]] = 100.0
            model.head_gate = torch.nn.Parameter(theta)
        return spotter

    return load, load_with_rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=sorted(demo.PROFILES))
    parser.add_argument("seed", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rules", default="gate,G,mean")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = replace(demo.PROFILES[args.profile], seed=args.seed, device="cpu")
    data = args.out / "dataset"
    t = time.perf_counter()
    if not (data / "test.json").is_file():
        render(profile, data)
    render_s = time.perf_counter() - t
    classes = read_class_list(data / "class.txt")
    test = read_e2e_labels(data / "test.json", classes)
    t = time.perf_counter()
    if not (args.out / "runs" / VARIANT / "checkpoints").is_dir():
        train(demo._train_config(args.out, VARIANT, profile))
    train_s = time.perf_counter() - t
    for rule in args.rules.split(","):
        original, infer.load_spotter = loader_for(rule)
        t = time.perf_counter()
        try:
            predictions, kept = demo._spot_split(args.out, VARIANT, test, profile)
        finally:
            infer.load_spotter = original
        result = frame_map(test, predictions, classes, demo.TOLERANCES)
        ap = {c: None if result.per_class[2].get(c) is None else round(100 * result.per_class[2][c], 1)
              for c in classes}
        scene = demo.class_group_ap(result, [c for c in classes if c not in demo.CARD_CLASSES])
        cards = demo.class_group_ap(result, demo.CARD_CLASSES)
        print(json.dumps({"profile": args.profile, "seed": args.seed, "rule": rule, "ap_delta2": ap,
                          "scene": round(100 * scene, 1), "cards": round(100 * cards, 1),
                          "map_delta2": round(100 * result.map[2], 1),
                          "kept": None if kept is None else kept.to_json(),
                          "render_s": round(render_s), "train_s": round(train_s),
                          "spot_s": round(time.perf_counter() - t)}), flush=True)


if __name__ == "__main__":
    main()
