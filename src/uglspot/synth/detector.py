"""The simulated open-vocabulary detector: the renderer's true boxes with a
configurable recall, box jitter, score noise, false positives on crowd specks
of the card colours, and a feature per box that carries its class plus
noise, as a detector embedding does."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from uglspot.synth import draw
from uglspot.synth.config import BALL, ENTITY_VOCABULARY, PLAYER, RED, REFEREE, YELLOW, DetectorSimConfig
from uglspot.synth.render import RenderedFrame


def class_directions(feat_dim: int) -> np.ndarray:
    """Fixed unit vectors (len(vocabulary) + 1, feat_dim): one per entity
    class and a last one for background clutter. Seeded by the vocabulary, so
    every match and split shares them, as a real detector's embedding space is
    shared."""
    digest = hashlib.sha256(("|".join(ENTITY_VOCABULARY) + f"|{feat_dim}").encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    directions = rng.normal(size=(len(ENTITY_VOCABULARY) + 1, feat_dim))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def simulate_detections(rendered: RenderedFrame, cfg: DetectorSimConfig, rng: np.random.Generator,
                        directions: np.ndarray | None) -> dict[str, np.ndarray]:
    """What an open-vocabulary detector would report on one rendered frame:
    boxes xyxy in [0, 1], class index, score and (optionally) a feature."""
    H, W = rendered.crowd.shape
    boxes, cls, score, purity = [], [], [], []
    for box, c in zip(rendered.boxes, rendered.cls):
        name = ENTITY_VOCABULARY[c]
        if rng.random() >= cfg.recall.get(name, 1.0):
            continue
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
        boxes.append(box + rng.normal(0.0, cfg.box_jitter, 4) * size)
        cls.append(c)
        score.append(cfg.mean_score.get(name, 0.6) + rng.normal(0.0, cfg.score_noise))
        purity.append(rng.uniform(0.75, 1.0))
    # Card-coloured crowd specks fire the card prompts.
    specks = np.flatnonzero((rendered.crowd == draw.CROWD_YELLOW) | (rendered.crowd == draw.CROWD_RED))
    if specks.size and cfg.crowd_false_positives > 0:
        for index in rng.choice(specks, size=min(int(rng.poisson(cfg.crowd_false_positives)), specks.size),
                                replace=False):
            y, x = divmod(int(index), W)
            half = rng.uniform(1.0, 2.5, 2)
            boxes.append(np.array([x + 0.5 - half[0], y + 0.5 - half[1], x + 0.5 + half[0], y + 0.5 + half[1]]))
            colour = YELLOW if rendered.crowd[y, x] == draw.CROWD_YELLOW else RED
            cls.append(colour if rng.random() < 0.85 else YELLOW + RED - colour)
            score.append(cfg.false_positive_score + rng.normal(0.0, cfg.score_noise))
            purity.append(rng.uniform(0.1, 0.6))
    for _ in range(int(rng.poisson(cfg.other_false_positives))):
        centre = rng.uniform([0, 0], [W, H])
        half = rng.uniform(1.0, 6.0, 2)
        boxes.append(np.concatenate([centre - half, centre + half]))
        cls.append(int(rng.choice([BALL, PLAYER, REFEREE])))
        score.append(cfg.false_positive_score + rng.normal(0.0, cfg.score_noise))
        purity.append(rng.uniform(0.1, 0.6))

    n = len(boxes)
    box_array = np.array(boxes, dtype=np.float64).reshape(n, 4) / np.array([W, H, W, H])
    box_array = np.clip(box_array, 0.0, 1.0)
    box_array[:, 2:] = np.maximum(box_array[:, 2:], box_array[:, :2])
    score_array = np.clip(np.array(score, dtype=np.float64), 0.0, 1.0)
    cls_array = np.array(cls, dtype=np.int64)
    order = np.argsort(-score_array, kind="stable")
    order = order[score_array[order] >= cfg.min_score][:cfg.max_entities]
    out = {"boxes": box_array[order].astype(np.float32), "cls": cls_array[order],
           "score": score_array[order].astype(np.float32)}
    if directions is not None:
        D = directions.shape[1]
        mix = np.array(purity, dtype=np.float64)[order][:, None]
        feat = mix * directions[cls_array[order]] + (1 - mix) * directions[-1]
        feat = feat + rng.normal(0.0, cfg.feat_noise / math.sqrt(D), feat.shape)
        out["feat"] = feat.astype(np.float32)
    return out
