"""Speed of the metrics against their reference, on real label files.

SoccerNet: the shared soccernetv2 test labels (200 halves, 22,551 events)
are written as a SoccerNet tree of Labels-v2.json in a temporary folder,
with about ten scored predictions per event (seeded: jittered copies of each
event and false positives) as results_spotting.json. The official evaluator
(SoccerNet 0.2.0) and uglspot each read those files and score them; both
are timed end to end (best of --repeat runs, wall and CPU seconds: on a
shared machine the CPU figure is the steadier one). Prints one JSON line per
figure, then one line per metric with the ratios and whether every number
(average, per class; all, visible, unshown) agrees to 1e-12.

    PYTHONPATH=src python benchmarks/metrics_speed.py [--labels PATH] [--metrics tight,loose]

Frames-mAP (tennis and finegym test labels, about ten predictions per event)
is timed by benchmarks/frames_map_speed.py, which this script runs last unless
--skip-frames is given, so one command prints every metrics figure.

The labels default to ../shared/data/labels beside the repository
(UGLSPOT_SHARED overrides the shared folder).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from uglspot.data.labels import read_e2e_labels
from uglspot.data.soccernet import (GamePredictions, Prediction, e2e_to_soccernet, format_game_time,
                                    read_labels_dir, read_predictions_dir, write_game_predictions, write_labels)
from uglspot.metrics.soccernet import SOCCERNET_V2_CLASSES, average_map

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UGLSPOT_SHARED", REPO.parent / "shared"))
DEFAULT_LABELS = SHARED / "data" / "labels" / "soccernetv2" / "test.json"


def make_predictions(labels_json: Path, labels_dir: Path, predictions_dir: Path, seed: int = 0,
                     per_event: int = 10) -> tuple[int, int, int]:
    """Write the SoccerNet tree of the labels and seeded predictions; returns
    (halves, events, predictions)."""
    videos = read_e2e_labels(labels_json, allow_past_end=True)
    games = e2e_to_soccernet(videos, str(labels_json))
    rng = np.random.default_rng(seed)
    num_predictions = 0
    for game in games:
        write_labels(labels_dir, game)
        predictions = []
        for a in game.annotations:
            # (per_event - 2) jittered guesses of the true class, 2 of a random class nearby
            for k in range(per_event):
                label = a.label if k < per_event - 2 else SOCCERNET_V2_CLASSES[int(rng.integers(17))]
                jitter = rng.normal(0, 2500) if k < per_event - 2 else rng.uniform(-60_000, 60_000)
                position = max(0, int(a.position + jitter))
                score = float(rng.beta(2, 2 if k == 0 else 5))
                predictions.append(Prediction(half=a.half, position=position, label=label, confidence=score,
                                              game_time=format_game_time(a.half, position)))
        num_predictions += len(predictions)
        write_game_predictions(predictions_dir, GamePredictions.from_predictions(
            game.game, predictions, {"UrlLocal": game.game}))
    return len(videos), sum(len(v.events) for v in videos), num_predictions


def run_official(labels_dir: Path, predictions_dir: Path, metric: str) -> dict[str, Any]:
    from SoccerNet.Evaluation.ActionSpotting import evaluate
    from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2

    return evaluate(str(labels_dir), str(predictions_dir), split=None, dataset=None,
                    EVENT_DICTIONARY=EVENT_DICTIONARY_V2, metric=metric)


def run_uglspot(labels_dir: Path, predictions_dir: Path, metric: str) -> dict[str, Any]:
    result = average_map(read_labels_dir(labels_dir), read_predictions_dir(predictions_dir), metric)
    out = result.to_json()
    for key in ("a_mAP_per_class", "a_mAP_per_class_visible", "a_mAP_per_class_unshown"):
        out[key] = list(out[key].values())  # the official class order
    return out


def max_difference(ours: dict[str, Any], official: dict[str, Any]) -> float:
    worst = 0.0
    for key in ("a_mAP", "a_mAP_visible", "a_mAP_unshown"):
        worst = max(worst, abs(ours[key] - float(official[key])))
    for key in ("a_mAP_per_class", "a_mAP_per_class_visible", "a_mAP_per_class_unshown"):
        worst = max([worst] + [abs(a - float(b)) for a, b in zip(ours[key], official[key], strict=True)])
    return worst


def timed(run: Any, repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU seconds of ``repeat`` runs, and the last result."""
    wall, cpu, result = math.inf, math.inf, None
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall = min(wall, time.perf_counter() - start_wall)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def soccernet_figures(labels_json: Path, metrics: list[str], repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="uglspot-bench-") as tmp:
        labels_dir, predictions_dir = Path(tmp) / "labels", Path(tmp) / "predictions"
        halves, events, predictions = make_predictions(labels_json, labels_dir, predictions_dir)
        print(json.dumps({"benchmark": "soccernet_map", "input": str(labels_json), "halves": halves,
                          "events": events, "predictions": predictions, "repeat": repeat}), flush=True)
        for metric in metrics:
            seconds: dict[str, tuple[float, float]] = {}
            results: dict[str, dict[str, Any]] = {}
            for impl, run in (("official", run_official), ("uglspot", run_uglspot)):
                wall, cpu, results[impl] = timed(lambda: run(labels_dir, predictions_dir, metric), repeat)
                seconds[impl] = (wall, cpu)
                print(json.dumps({"benchmark": "soccernet_map", "metric": metric, "impl": impl,
                                  "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                                  "a_mAP": float(results[impl]["a_mAP"])}), flush=True)
            # the metric alone, files already read into records
            labels, preds = read_labels_dir(labels_dir), read_predictions_dir(predictions_dir)
            wall, cpu, _ = timed(lambda: average_map(labels, preds, metric), repeat)
            print(json.dumps({"benchmark": "soccernet_map", "metric": metric, "impl": "uglspot",
                              "part": "metric without reading files", "seconds": round(wall, 3),
                              "cpu_seconds": round(cpu, 3)}), flush=True)
            difference = max_difference(results["uglspot"], results["official"])
            print(json.dumps({"benchmark": "soccernet_map", "metric": metric,
                              "ratio": round(seconds["official"][0] / seconds["uglspot"][0], 1),
                              "ratio_cpu": round(seconds["official"][1] / seconds["uglspot"][1], 1),
                              "max_abs_difference": difference,
                              "same": bool(difference <= 1e-12 and not math.isnan(difference))}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS,
                        help="E2E-Spot soccernetv2 labels to build the SoccerNet tree from")
    parser.add_argument("--metrics", default="tight,loose", help="comma-separated SoccerNet metrics to time")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is reported")
    parser.add_argument("--skip-frames", action="store_true", help="do not run the frames-mAP figures")
    args = parser.parse_args()
    soccernet_figures(args.labels, args.metrics.split(","), args.repeat)
    if not args.skip_frames:
        frames_script = Path(__file__).with_name("frames_map_speed.py")
        subprocess.run([sys.executable, str(frames_script), "--labels", str(args.labels.parents[1])], check=True)


if __name__ == "__main__":
    main()
