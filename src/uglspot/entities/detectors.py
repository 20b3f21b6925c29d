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
# What a box's feature vector is (``uglspot.entities.detect``): ``roi`` pools the
# detector's visual backbone map in the box (the paper's), ``query`` takes the
# model's own per-box embedding (Grounding DINO's decoder query, OWLv2's class
# embedding).
FEATURE_KINDS = ("roi", "query")
