"""Names and defaults of the entity detector backends (no heavy imports, so
the command line can list them without loading torch)."""

from __future__ import annotations

SOCCER_PROMPT = ("ball", "yellow card", "red card", "goal", "referee", "player")
DEFAULT_MODELS = {
    "grounding-dino": "IDEA-Research/grounding-dino-tiny",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "glip-import": "GLIP-L (released UGL entity files)",
}
DETECTOR_NAMES = tuple(DEFAULT_MODELS)
