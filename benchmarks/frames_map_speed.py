"""Speed of frames-mAP (E2E-Spot's metric) on real label files.

For each dataset's test split: about ten scored predictions per ground-truth
event (nine jittered around it, most with its class, plus one false positive
anywhere in the video; seeded), then ``frame_map`` at tolerances 0, 1, 2, 4
timed over the whole split. The plain reference from the tests (a loop over
every ground truth per prediction) is timed on the same input (or on the
first --reference-videos videos) against ours, with the largest difference
in AP. SoccerNet-v2 (--datasets soccernetv2) shows long videos, where the
reference's scan over a half's ground truths costs most.

Prints one JSON line per figure. Usage:
  python benchmarks/frames_map_speed.py [--labels DIR] [--datasets tennis,finegym]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from _frames_helpers import reference_map  # noqa: E402  (the one plain reference, shared with the tests)
from uglspot.data.labels import Event, Video, VideoPredictions, read_class_list, read_e2e_labels  # noqa: E402
from uglspot.metrics.spotting import frame_map  # noqa: E402

TOLERANCES = (0, 1, 2, 4)


def default_labels() -> Path:
    shared = os.environ.get("UGLSPOT_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "data" / "labels"


def make_predictions(truth: list[Video], classes: list[str], per_event: int, seed: int) -> list[VideoPredictions]:
    rng = np.random.default_rng(seed)
    preds = []
    for video in truth:
        events = []
        last = max(video.num_frames - 1, 0)
        for event in video.events:
            jitter = np.rint(rng.normal(0, 3, per_event - 1)).astype(int)
            frames = np.clip(event.frame + jitter, 0, last)
            scores = np.clip(1 - np.abs(jitter) / 10 + rng.normal(0, .15, per_event - 1), 0, 1)
            wrong = rng.random(per_event - 1) < .1
            for frame, score, is_wrong in zip(frames.tolist(), scores.tolist(), wrong.tolist()):
                label = classes[rng.integers(len(classes))] if is_wrong else event.label
                events.append(Event(frame=frame, label=label, score=score))
            events.append(Event(frame=int(rng.integers(last + 1)), label=classes[rng.integers(len(classes))],
                                score=float(rng.random() * .5)))
        preds.append(VideoPredictions(video=video.video, events=events))
    return preds


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=default_labels(), help="folder of the shared label files")
    parser.add_argument("--datasets", default="tennis,finegym")
    parser.add_argument("--split", default="test")
    parser.add_argument("--per-event", type=int, default=10, help="predictions per ground-truth event")
    parser.add_argument("--reference-videos", type=int, default=0,
                        help="videos in the reference subset (default 0: the whole split)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours; the best time is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for dataset in args.datasets.split(","):
        folder = args.labels / dataset
        classes = read_class_list(folder / "class.txt")
        truth = read_e2e_labels(folder / f"{args.split}.json", classes, allow_past_end=True)
        preds = make_predictions(truth, classes, args.per_event, args.seed)
        seconds, result = best_time(lambda: frame_map(truth, preds, classes, TOLERANCES), args.repeat)
        print(json.dumps({
            "benchmark": "frames_map", "dataset": dataset, "split": args.split, "videos": len(truth),
            "events": sum(len(v.events) for v in truth), "predictions": sum(len(p.events) for p in preds),
            "tolerances": list(TOLERANCES), "seconds": round(seconds, 4),
            "mAP": {str(t): round(result.map[t], 6) for t in TOLERANCES}}), flush=True)

        count = args.reference_videos or len(truth)
        sub_truth, sub_preds = truth[:count], preds[:count]
        ours_seconds, ours = best_time(lambda: frame_map(sub_truth, sub_preds, classes, TOLERANCES), args.repeat)
        start = time.perf_counter()
        reference = {t: reference_map(sub_truth, sub_preds, classes, t) for t in TOLERANCES}
        reference_seconds = time.perf_counter() - start
        diff = max(abs((ours.per_class[t][c] or 0) - (reference[t][1][c] or 0)) for t in TOLERANCES for c in classes)
        print(json.dumps({
            "benchmark": "frames_map_vs_reference", "dataset": dataset, "split": args.split,
            "videos": len(sub_truth), "events": sum(len(v.events) for v in sub_truth),
            "predictions": sum(len(p.events) for p in sub_preds), "seconds_ours": round(ours_seconds, 4),
            "seconds_reference": round(reference_seconds, 4),
            "ratio": round(reference_seconds / ours_seconds, 1), "max_abs_ap_difference": diff}), flush=True)


if __name__ == "__main__":
    main()
