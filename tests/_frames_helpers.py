"""A plain reference for mAP at frame tolerances, written straight from the
definition (loops over every ground truth per prediction; slow but obvious),
and random cases to compare against."""

from __future__ import annotations

import random
from typing import Sequence

from uglspot.data.labels import Event, Video, VideoPredictions


def reference_ap(truth: Sequence[Video], preds: Sequence[VideoPredictions], label: str,
                 tolerance: int) -> float | None:
    gt = {v.video: [e.frame for e in v.events if e.label == label] for v in truth}
    total = sum(len(frames) for frames in gt.values())
    if total == 0:
        return None
    ranked = [(p.video, e.frame, e.score) for p in preds for e in p.events if e.label == label]
    ranked.sort(key=lambda item: -item[2])  # Python's sort is stable: ties keep input order
    taken: set[tuple[str, int]] = set()  # (video, frame): copies at one frame are one target
    precisions = []
    for rank, (video, frame, _) in enumerate(ranked, 1):
        nearest = None
        for gt_frame in gt.get(video, []):  # file order: the first of equally near ones wins
            if (video, gt_frame) in taken:
                continue
            if nearest is None or abs(frame - gt_frame) < abs(frame - nearest):
                nearest = gt_frame
        if nearest is not None and abs(frame - nearest) <= tolerance:
            taken.add((video, nearest))
            precisions.append(len(taken) / rank)
    total_precision = 0.0
    best = 0.0
    for p in reversed(precisions):
        best = max(best, p)
        total_precision += best
    return total_precision / total


def reference_map(truth: Sequence[Video], preds: Sequence[VideoPredictions], classes: Sequence[str],
                  tolerance: int) -> tuple[float, dict[str, float | None]]:
    aps = {c: reference_ap(truth, preds, c, tolerance) for c in classes}
    present = [ap for ap in aps.values() if ap is not None]
    return sum(present) / len(present), aps


def random_case(rng: random.Random, num_videos: int, classes: Sequence[str], events_per_video: int,
                preds_per_event: int, score_levels: int | None = None
                ) -> tuple[list[Video], list[VideoPredictions]]:
    """Videos with events close together (duplicates and unsorted files
    included), predictions jittered around them plus false positives. With
    ``score_levels`` scores are drawn from few values, so ties abound."""
    truth, preds = [], []
    for v in range(num_videos):
        num_frames = rng.randint(5, 60)
        n_events = rng.randint(0, events_per_video)
        events = [Event(frame=rng.randrange(num_frames), label=rng.choice(classes)) for _ in range(n_events)]
        if rng.random() < 0.3:
            rng.shuffle(events)
        else:
            events.sort(key=lambda e: e.frame)
        truth.append(Video(video=f"v{v}", num_frames=num_frames, fps=25.0, events=events))

        def score() -> float:
            return rng.randrange(score_levels) / score_levels if score_levels else rng.random()

        pred_events = []
        for event in events:
            for _ in range(rng.randint(0, preds_per_event)):
                frame = min(num_frames - 1, max(0, event.frame + rng.randint(-5, 5)))
                label = event.label if rng.random() < 0.8 else rng.choice(classes)
                pred_events.append(Event(frame=frame, label=label, score=score()))
        for _ in range(rng.randint(0, 4)):
            pred_events.append(Event(frame=rng.randrange(num_frames), label=rng.choice(classes), score=score()))
        rng.shuffle(pred_events)
        if pred_events or rng.random() < 0.7:  # some videos have no prediction entry at all
            preds.append(VideoPredictions(video=f"v{v}", events=pred_events))
    rng.shuffle(preds)
    return truth, preds
