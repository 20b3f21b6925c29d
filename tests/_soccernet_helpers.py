"""Random SoccerNet games and predictions, written as real files, and the
official evaluator run on them: the reference for the uglspot metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = (
    "Penalty", "Kick-off", "Goal", "Substitution", "Offside", "Shots on target", "Shots off target",
    "Clearance", "Ball out of play", "Throw-in", "Foul", "Indirect free-kick", "Direct free-kick",
    "Corner", "Yellow card", "Red card", "Yellow->red card",
)


def game_time(half: int, position_ms: int) -> str:
    seconds = position_ms // 1000
    return f"{half} - {seconds // 60:02d}:{seconds % 60:02d}"


def random_labels(rng: np.random.Generator, num_events: int, num_classes: int = 13) -> dict[str, Any]:
    """A Labels-v2.json: events of ``num_classes`` random classes in both
    halves, some in the same 0.5 s slot as another of their class, some past
    120 minutes, some without a position, some not shown, one unknown label."""
    present = rng.choice(len(CLASSES), size=num_classes, replace=False)
    annotations = []
    for _ in range(num_events):
        half = int(rng.integers(1, 3))
        position = int(rng.integers(0, 50 * 60_000))
        if rng.random() < 0.02:
            position = int(rng.integers(120 * 60_000 - 2000, 125 * 60_000))
        label = CLASSES[int(rng.choice(present))]
        record: dict[str, Any] = {"gameTime": game_time(half, position), "label": label,
                                  "position": str(position),
                                  "team": str(rng.choice(["home", "away", "not applicable"])),
                                  "visibility": "not shown" if rng.random() < 0.25 else "visible"}
        if rng.random() < 0.03:
            del record["position"]  # old-style label: the time comes from gameTime
        annotations.append(record)
        if rng.random() < 0.05:  # a second event of the class in the same slot: the later one wins
            twin = dict(record, visibility="visible" if record["visibility"] == "not shown" else "not shown")
            if "position" in twin:
                twin["position"] = str(position - position % 500 + int(rng.integers(0, 500)))
            annotations.append(twin)
    annotations.append({"gameTime": "1 - 01:00", "label": "Not a class", "position": "60000",
                        "team": "home", "visibility": "visible"})
    return {"UrlLocal": "x/", "annotations": annotations}


def random_predictions(rng: np.random.Generator, labels: dict[str, Any], per_event: int = 10,
                       false_positives: int = 30) -> dict[str, Any]:
    """About ``per_event`` scored guesses around each event (jitter of a few
    seconds), false positives anywhere, ties (scores on a coarse grid), scores
    exactly on the evaluator's thresholds, negative and NaN confidences, scores
    above 1, string numbers, guesses past 120 minutes and several guesses in
    one slot."""
    predictions = []

    def add(half: int, position: int, label: str) -> None:
        position = max(0, position)
        draw = rng.random()
        if draw < 0.3:
            confidence: Any = round(float(rng.random()), 1)  # coarse: many ties
        elif draw < 0.33:
            confidence = -float(rng.random())
        elif draw < 0.34:
            confidence = float("nan")
        elif draw < 0.36:
            confidence = 1 + float(rng.random())
        elif draw < 0.40:  # exactly on one of the 200 thresholds
            confidence = float(np.linspace(0, 1, 200)[int(rng.integers(200))])
        else:
            confidence = float(rng.random())
        record: dict[str, Any] = {"gameTime": game_time(half, position), "label": label,
                                  "position": str(position) if rng.random() < 0.5 else position,
                                  "half": str(half) if rng.random() < 0.5 else half,
                                  "confidence": str(confidence) if rng.random() < 0.2 else confidence}
        predictions.append(record)

    for annotation in labels["annotations"]:
        if annotation["label"] not in CLASSES or "position" not in annotation:
            continue
        half, position = int(annotation["gameTime"][0]), int(annotation["position"])
        for _ in range(int(rng.integers(per_event // 2, per_event + per_event // 2 + 1))):
            add(half, position + int(rng.normal(0, 3000)), annotation["label"])
    for _ in range(false_positives):
        position = int(rng.integers(0, 50 * 60_000)) if rng.random() > 0.05 else int(rng.integers(0, 130 * 60_000))
        add(int(rng.integers(1, 3)), position, CLASSES[int(rng.integers(len(CLASSES)))])
    order = rng.permutation(len(predictions))  # file order decides which guess keeps a shared slot
    return {"UrlLocal": "x", "predictions": [predictions[i] for i in order]}


def write_tree(root: Path, files: dict[str, dict[str, Any]], filename: str) -> None:
    for game, data in files.items():
        folder = root / game
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(json.dumps(data), encoding="utf-8")


def official(labels_dir: Path, predictions_dir: Path, metric: str,
             classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    """The official SoccerNet 0.2.0 evaluator, finding the games under the
    folders itself (``dataset=None``), with ``classes`` as its dictionary."""
    from SoccerNet.Evaluation.ActionSpotting import evaluate

    return evaluate(str(labels_dir), str(predictions_dir), split=None, dataset=None,
                    EVENT_DICTIONARY={name: index for index, name in enumerate(classes)}, metric=metric)
