"""Diagnostics that need the synthetic ground truth: which entity boxes the
model's attention keeps at card events.

Only synthetic entity stores carry a ground-truth flag per box (``truth``:
a real object of the frame, not a false positive); models never read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from uglspot.data.labels import Event
from uglspot.synth.config import RED, YELLOW

# Event class -> the detector class of the object that carries it.
CARD_ENTITIES = {"Yellow card": YELLOW, "Red card": RED}


@dataclass
class KeptShare:
    """Counts of card-class boxes at card events, and how many the attention kept."""

    true_kept: int = 0
    true_total: int = 0
    false_kept: int = 0
    false_total: int = 0

    def add(self, other: "KeptShare") -> "KeptShare":
        return KeptShare(self.true_kept + other.true_kept, self.true_total + other.true_total,
                         self.false_kept + other.false_kept, self.false_total + other.false_total)

    @property
    def true_share(self) -> float | None:
        return self.true_kept / self.true_total if self.true_total else None

    @property
    def false_share(self) -> float | None:
        return self.false_kept / self.false_total if self.false_total else None

    def to_json(self) -> dict[str, float | int | None]:
        return {"true_card_boxes": self.true_total, "true_card_kept": self.true_share,
                "false_card_boxes": self.false_total, "false_card_kept": self.false_share}


def kept_card_boxes(events: Sequence[Event], attention: np.ndarray, cls: np.ndarray, mask: np.ndarray,
                    truth: np.ndarray, frames_after: int = 2) -> KeptShare:
    """Of the boxes of a card event's own class in frames ``event .. event +
    frames_after`` (the card is up), the share the attention kept, for true
    boxes and for false positives (crowd specks) separately.

    attention, cls, mask, truth: (num_frames, N) for the whole video, slots in
    the order the entity store gives them. A box counts as kept when its
    weight is at least the uniform weight 1/n_valid of its frame (the AAM's
    rule; with overlapping windows the weight is the windows' average).
    """
    counts = KeptShare()
    num_frames = attention.shape[0]
    for event in events:
        want = CARD_ENTITIES.get(event.label)
        if want is None:
            continue
        for frame in range(event.frame, min(event.frame + frames_after + 1, num_frames)):
            valid = mask[frame]
            n = int(valid.sum())
            if n == 0:
                continue
            kept = valid & (attention[frame] * n >= 1.0 - 1e-5)
            boxes = valid & (cls[frame] == want)
            true_boxes, false_boxes = boxes & truth[frame], boxes & ~truth[frame]
            counts = counts.add(KeptShare(int((kept & true_boxes).sum()), int(true_boxes.sum()),
                                          int((kept & false_boxes).sum()), int(false_boxes.sum())))
    return counts
