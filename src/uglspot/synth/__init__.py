"""A synthetic football benchmark: broadcast-like matches with exact labels.

Real broadcasts and detector weights are licensed and large; this package
makes matches that exercise every stage of uglspot with nothing downloaded.

- ``config``: the event classes, the entity vocabulary, ``SynthConfig`` and
  ``DetectorSimConfig``;
- ``simulator``: a seeded match played frame by frame and the broadcast
  camera that follows it (``simulate_match``);
- ``draw`` and ``render``: the pitch, stands, players, ball and cards as
  pixels, with the true box of every object (``render_frame``);
- ``detector``: what an open-vocabulary detector would report on a rendered
  frame (``simulate_detections``);
- ``writers``: an H.264 video, E2E-Spot and SoccerNet labels and an entity
  store per match (``generate_dataset``).

The card classes are carried by small objects only: the referee raises an
arm in fouls with and without a card, the card covers under 1% of the frame,
stays up for about a second, and the crowd has specks of the same colours.
"""

from uglspot.synth.config import (
    BALL, CLASSES, DETECTOR_MODEL, DETECTOR_NAME, ENTITY_VOCABULARY, GOAL, PLAYER, RED, REFEREE, SPLITS, YELLOW,
    DetectorSimConfig, SynthConfig,
)
from uglspot.synth.detector import class_directions, simulate_detections
from uglspot.synth.render import RenderedFrame, render_frame
from uglspot.synth.simulator import MatchScript, simulate_match
from uglspot.synth.writers import (
    MatchPaths, VideoWriter, entity_store_key, generate_dataset, match_paths, split_counts, write_match,
)

__all__ = [
    "BALL", "CLASSES", "DETECTOR_MODEL", "DETECTOR_NAME", "ENTITY_VOCABULARY", "GOAL", "PLAYER", "RED", "REFEREE",
    "SPLITS", "YELLOW", "DetectorSimConfig", "SynthConfig", "class_directions", "simulate_detections",
    "RenderedFrame", "render_frame", "MatchScript", "simulate_match", "MatchPaths", "VideoWriter",
    "entity_store_key", "generate_dataset", "match_paths", "split_counts", "write_match",
]
