"""What a synthetic match and its simulated detector are made of: the
event classes, the entity vocabulary and the two config dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

CLASSES = ["Throw-in", "Shot", "Corner", "Kick-off", "Goal", "Yellow card", "Red card"]
ENTITY_VOCABULARY = ["ball", "yellow card", "red card", "goal", "referee", "player"]
BALL, YELLOW, RED, GOAL, REFEREE, PLAYER = range(len(ENTITY_VOCABULARY))
DETECTOR_NAME = "synthetic"
# The feature kind of the simulated detector's boxes (the store key's ``features``):
# class directions plus noise, neither RoI nor query features of a real model.
FEATURE_KIND = "simulated"
DETECTOR_MODEL = "uglspot-synthetic-detector-v1"
SPLITS = ("train", "val", "test")


@dataclass
class DetectorSimConfig:
    """How the simulated open-vocabulary detector sees a rendered frame."""

    recall: dict[str, float] = field(default_factory=lambda: {
        "ball": 0.75, "yellow card": 0.8, "red card": 0.8, "goal": 0.95, "referee": 0.9, "player": 0.85})
    mean_score: dict[str, float] = field(default_factory=lambda: {
        "ball": 0.55, "yellow card": 0.5, "red card": 0.5, "goal": 0.8, "referee": 0.65, "player": 0.7})
    crowd_false_positives: float = 1.5  # card-coloured false positives per frame on crowd specks
    other_false_positives: float = 1.0  # ball/player/referee false positives per frame
    false_positive_score: float = 0.3  # mean score of a false positive
    score_noise: float = 0.12  # standard deviation of every score
    box_jitter: float = 0.08  # standard deviation of box edges, as a fraction of the box size
    feat_dim: int = 256  # 0 writes a store without features
    feat_noise: float = 0.7  # norm of the noise added to the unit class direction
    max_entities: int = 50
    min_score: float = 0.05


@dataclass
class SynthConfig:
    """One match: picture size, frame rate, length and what happens in it."""

    width: int = 224
    height: int = 128
    fps: float = 8.0
    minutes: float = 4.0
    # Relative frequency of the incidents that interrupt open play.
    incidents: dict[str, float] = field(default_factory=lambda: {
        "throw-in": 0.34, "shot": 0.24, "foul": 0.3, "corner": 0.12})
    # Outcome of a foul: the rest of the probability is no card (the referee only points).
    yellow_card: float = 0.45
    red_card: float = 0.25
    goal_probability: float = 0.35  # of a shot; the rest are saved or go wide
    card_seconds: tuple[float, float] = (0.6, 1.2)  # how long a card stays up
    closeup_probability: float = 0.75  # the camera cuts to the referee for a foul
    open_play_seconds: tuple[float, float] = (3.0, 9.0)
    crf: int = 20  # H.264 quality (lower is better)
    detector: DetectorSimConfig = field(default_factory=DetectorSimConfig)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError(f"width and height must be even and at least 32, got {self.width}x{self.height}")
        if self.fps <= 0 or self.minutes <= 0:
            raise ValueError("fps and minutes must be positive")
        unknown = set(self.incidents) - {"throw-in", "shot", "foul", "corner"}
        if unknown:
            raise ValueError(f"unknown incident(s) {sorted(unknown)}; use throw-in, shot, foul, corner")
        unknown = set(self.detector.recall) - set(ENTITY_VOCABULARY)
        if unknown:
            raise ValueError(f"detector.recall has unknown class(es) {sorted(unknown)}")

    @property
    def num_frames(self) -> int:
        return int(round(self.minutes * 60 * self.fps))

