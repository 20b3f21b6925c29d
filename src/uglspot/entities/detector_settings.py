"""Names and defaults of the entity detector backends (no heavy imports, so
the command line can list them without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SOCCER_PROMPT = ("ball", "yellow card", "red card", "goal", "referee", "player")
DEFAULT_MODELS = {
    "grounding-dino": "IDEA-Research/grounding-dino-tiny",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "glip-import": "GLIP-L (released UGL entity files)",
}
DETECTOR_NAMES = tuple(DEFAULT_MODELS)
# What a box's feature vector is (``uglspot.entities.backends``): ``roi`` pools the
# detector's visual backbone map in the box (the paper's), ``query`` takes the
# model's own per-box embedding (Grounding DINO's decoder query, OWLv2's class
# embedding).
FEATURE_KINDS = ("roi", "query")


@dataclass
class DetectorConfig:
    name: Literal["grounding-dino", "owlv2", "glip-import"] = "grounding-dino"
    model: str | None = None  # hub id or local directory; None = the backend's default
    prompt: list[str] = field(default_factory=lambda: list(SOCCER_PROMPT))
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    max_per_frame: int = 50
    image_size: tuple[int, int] | None = None  # grounding-dino (shortest, longest edge); None = the model's
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    features: Literal["roi", "query"] = "roi"  # what a box's feature is (``uglspot.entities.backends``)

    @property
    def model_id(self) -> str:
        return self.model or DEFAULT_MODELS[self.name]
