"""Entities of a live stream's frames (``uglspot spot --live --detector``).

A model that uses scene entities reads, with each frame, the boxes the
open-vocabulary detector found in it. Offline, ``spot --detector`` detects a
whole file into an entity store first; live, each frame is detected as it
arrives, with the same detector set up the same way (:func:`detection_config`
of ``uglspot.app.spot``: the vocabulary, thresholds, box count, input size and
feature kind of the stores the model was trained on), on the same pixels
(the frame decoded at the size ``entities.pipeline.detect_video`` decodes a
file at), and handed to the model as a store window would give that frame
back (``entities.store.frame_window``: the best ``entity_slots`` boxes,
features rounded as the store keeps them). So live and offline entities are
the same, and so are the events.

Frames wait for their detections: a frame is pushed to the spotter only
after the detector has seen it, so the latency of each event includes the
detection time. Frames are detected in batches of what has arrived, at most
``--detector-batch-size`` of them: one at a time while the detector keeps up,
more when it falls behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from uglspot.app.spot import DetectorChoice
    from uglspot.engine.live import EntityFrame
    from uglspot.video import Size

ENTITIES_REFUSED = ("--entities cannot be used with --live: entity stores belong to recorded videos; with --live "
                    "the entities are detected on the frames as they arrive: pass --detector NAME instead, or spot "
                    "the recorded file with --entities (without --live)")


@dataclass
class LiveDetection:
    """The detector of a live run and how its detections become the model's entity tensors."""

    detector: Any  # an ``entities.backends.EntityDetector``
    slots: int  # entity slots per frame the model reads (its ``entity_slots``)
    batch_size: int  # at most this many frames per detector call

    @property
    def vocabulary(self) -> list[str]:
        return list(self.detector.vocabulary)

    def second_size(self, width: int, height: int) -> Size:
        """The size a source of ``width`` x ``height`` display pixels is decoded
        at for the detector: the rule of ``entities.pipeline.detect_video`` (no
        more pixels than the detector uses; the source's own size when smaller)."""
        wanted = self.detector.decode_height(height, width)
        return wanted if wanted < height else None

    def entities(self, frames: Sequence[np.ndarray]) -> list[EntityFrame]:
        """Detect ``frames`` (uint8 (3, h, w) each, at :meth:`second_size`) as
        one batch; per frame boxes (N, 4), cls (N,), score (N,), mask (N,)
        [, feat (N, De)] as ``data.dataset.EntityWindows`` gives a stored frame."""
        from uglspot.entities.store import frame_window

        detections = self.detector.detect(torch.from_numpy(np.stack(frames)))  # one dict per frame
        out = []
        for detection in detections:
            window = frame_window(detection, self.slots, self.detector.feat_dim)
            frame = {name: torch.from_numpy(window[name][0]) for name in ("boxes", "cls", "score", "mask")}
            frame["cls"] = frame["cls"].long()
            if window["feat"] is not None:
                frame["feat"] = torch.from_numpy(window["feat"][0]).float()
            out.append(frame)
        return out


def live_detection(spotter: Any, choice: DetectorChoice, device: Any, notes: list[str]) -> LiveDetection | None:
    """The detection of a live run of ``spotter``: None for a global-only
    model (a ``--detector`` given is ignored, with a note); for a model that
    uses entities, the detector ``choice`` names, set up as offline ``spot
    --detector`` sets it up, after checking that the model can read what it
    gives. One line and what to do when it cannot run live."""
    from uglspot.app.spot import detection_config, runnable_detectors
    from uglspot.errors import UserError
    from uglspot.synth.config import DETECTOR_NAME, FEATURE_KIND

    config = spotter.model.config
    if not config.use_entities:
        if choice.name is not None:
            notes.append(f"{spotter.directory} does not use entities; --detector ignored")
        return None
    trained = spotter.settings.entities or {}
    made_by = trained.get("detector")
    if made_by == DETECTOR_NAME or trained.get("features") == FEATURE_KIND:
        raise UserError(f"{spotter.directory}: this model was trained on entities of the simulated detector of "
                        "`uglspot synth`, which a real detector does not reproduce, so it cannot spot a live "
                        "stream; spot the recorded synthetic match with --entities DATA/entities (without --live), "
                        "or use a model trained on a real detector's stores")
    if choice.name is None:
        runnable = runnable_detectors()
        if made_by in runnable:
            advice = f"add --detector {made_by} (the detector of its training stores)"
        elif made_by:
            advice = (f"its training stores come from {made_by!r}, which spot cannot run; add --detector NAME "
                      f"({', '.join(runnable)}) with a --detector-model whose features it reads, or spot the "
                      "recorded file with --entities (without --live)")
        else:
            advice = f"add --detector NAME ({', '.join(runnable)})"
        raise UserError(f"{spotter.directory}: this model uses scene entities; with --live they are detected on "
                        f"the frames as they arrive: {advice}")
    detector_config = detection_config(choice, spotter.settings)
    vocabulary = list(detector_config.prompt)
    if trained.get("prompt") and vocabulary != list(trained["prompt"]):
        raise UserError(f"--prompt {','.join(vocabulary)}: the model was trained on the vocabulary "
                        f"{','.join(trained['prompt'])} (in this order); drop --prompt or give that one")
    if config.num_entity_classes and len(vocabulary) > config.num_entity_classes:
        raise UserError(f"--detector {choice.name}: the vocabulary has {len(vocabulary)} names "
                        f"({', '.join(vocabulary)}) but the model embeds {config.num_entity_classes} entity "
                        f"classes (num_entity_classes={config.num_entity_classes}); give at most that many to --prompt")
    from uglspot.entities.backends import create_detector

    detector = create_detector(detector_config, device)
    if config.entity_source == "detector" and detector.feat_dim != config.entity_feat_dim:
        raise UserError(f"--detector {choice.name} ({detector_config.model_id}): its {detector_config.features} "
                        f"features are {detector.feat_dim} wide but the model reads entity_feat_dim "
                        f"{config.entity_feat_dim}; give --detector-model the detector model its training stores "
                        f"came from ({trained.get('model') or 'see its inference.json entities'})")
    return LiveDetection(detector, spotter.settings.entity_slots, choice.batch_size)
