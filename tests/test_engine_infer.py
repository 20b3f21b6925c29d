from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from uglspot.data.events import EntityWeight, SpottedEvent
from uglspot.engine.infer import (
    SequentialReader, SpotResult, VideoScores, center_crop, most_attended, score_video, spot_events,
)
from uglspot.entities.batch import EntityBatch


def test_sequential_reader_decodes_each_frame_once() -> None:
    calls = []

    def read(start: int, count: int) -> torch.Tensor:
        calls.append((start, count))
        return torch.arange(start, start + count)

    reader = SequentialReader(read)
    for start in (-5, 45, 95, 145):
        assert reader(start, 100).tolist() == list(range(start, start + 100))
    assert calls == [(-5, 100), (95, 50), (145, 50), (195, 50)]
    assert reader(0, 10).tolist() == list(range(10)) and calls[-1] == (0, 10)  # going back reads afresh


@pytest.mark.parametrize("hw, size, expected", [
    ((10, 20), (4, 6), (slice(3, 7), slice(7, 13))),
    ((10, 20), None, (slice(0, 10), slice(0, 20))),
    ((4, 4), (8, 8), (slice(0, 4), slice(0, 4))),
])
def test_center_crop(hw: tuple[int, int], size, expected) -> None:
    frames = torch.arange(hw[0] * hw[1]).view(1, 1, 1, *hw)
    cropped, _ = center_crop(frames, None, size)
    assert torch.equal(cropped, frames[..., expected[0], expected[1]])


def test_center_crop_moves_boxes_and_masks_the_ones_cut_away() -> None:
    entities = EntityBatch(boxes=torch.tensor([[[[0.4, 0.4, 0.6, 0.6], [0.0, 0.0, 0.1, 0.1]]]]),
                           cls=torch.zeros(1, 1, 2, dtype=torch.long), score=torch.ones(1, 1, 2),
                           mask=torch.tensor([[[True, True]]]))
    frames = torch.zeros(1, 1, 3, 100, 200, dtype=torch.uint8)
    _, out = center_crop(frames, entities, (50, 100))  # keeps x 50..150, y 25..75
    assert out.boxes[0, 0, 0].tolist() == pytest.approx([0.3, 0.3, 0.7, 0.7])
    assert out.mask.tolist() == [[[True, False]]]


def test_most_attended_orders_by_weight_and_skips_empty_slots() -> None:
    window = {"boxes": torch.tensor([[[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.4, 0.4], [0.5, 0.5, 0.6, 0.6]]]),
              "cls": torch.tensor([[0, 1, 1]]), "mask": torch.tensor([[True, True, False]])}
    weights = np.array([0.2, 0.7, 0.9], dtype=np.float32)
    out = most_attended(window, weights, ["ball", "referee"], top=3)
    assert [(e.cls, e.weight) for e in out] == [("referee", pytest.approx(0.7)), ("ball", pytest.approx(0.2))]
    assert out[0].box == pytest.approx([0.3, 0.3, 0.4, 0.4])


class ConstantSpotter(torch.nn.Module):
    """Logit of class 1 equals the absolute frame index read from the frames' pixel values."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.config = SimpleNamespace(pixel_mean=(0.0, 0.0, 0.0), pixel_std=(1 / 255,) * 3)  # normalised = raw value

    def scores(self, output: SimpleNamespace) -> torch.Tensor:  # what inference reads of a spotter's output
        return torch.softmax(output.logits.float(), -1)

    def forward(self, frames: torch.Tensor, entities: object) -> SimpleNamespace:
        """frames (B, T, 3, H, W) → logits (B, T, 2)."""
        B, T, C, H, W = frames.shape
        value = frames[:, :, 0, 0, 0] * self.scale  # (B, T)
        logits = torch.stack([torch.zeros_like(value), value], -1)
        return SimpleNamespace(logits=logits, attention=torch.ones(B, T, 1) / (1 + frames[:, :, 0, 0, :1]))


def test_score_video_covers_every_frame_and_averages_overlaps() -> None:
    num_frames = 23

    def read(start: int, count: int) -> torch.Tensor:
        frames = torch.zeros(count, 3, 2, 2, dtype=torch.uint8)
        for i in range(count):
            if 0 <= start + i < num_frames:
                frames[i] = (start + i) % 3  # values 0, 1, 2 repeating
        return frames

    scores = score_video(ConstantSpotter(), num_frames, read, None, clip_len=8, pad=2, batch_size=3)
    assert scores.probs.shape == (num_frames, 2)
    expected = torch.softmax(torch.tensor([[0.0, float(f % 3)] for f in range(num_frames)]), -1).numpy()
    assert np.allclose(scores.probs, expected, atol=1e-6)
    assert scores.attention.shape == (num_frames, 1)


def test_spot_events_thresholds_and_suppresses_per_class() -> None:
    probs = np.zeros((10, 3), dtype=np.float32)
    probs[:, 0] = 1.0
    probs[3, 1], probs[4, 1], probs[8, 1], probs[4, 2] = 0.9, 0.5, 0.3, 0.05
    events = spot_events(VideoScores(probs, None), ["a", "b"], threshold=0.1, nms_window=1)
    assert [(e.frame, e.label, round(e.score, 3)) for e in events] == [(3, "a", 0.9), (8, "a", 0.3)]


def test_events_json_record() -> None:
    result = SpotResult("v", 25.0, 100, VideoScores(np.zeros((100, 2)), None),
                        [SpottedEvent(50, "goal", 0.87654321, [EntityWeight((0, 0, 1, 1), "ball", 1.0)])])
    assert result.to_json() == {"video": "v", "fps": 25.0, "num_frames": 100, "events": [
        {"frame": 50, "time": 2.0, "label": "goal", "score": 0.876543,
         "entities": [{"box": [0, 0, 1, 1], "class": "ball", "weight": 1.0}]}]}


def test_soccernet_selection_metric_of_perfect_predictions(shared_labels) -> None:
    pytest.importorskip("uglspot.metrics.soccernet")
    from uglspot.data.labels import Event, VideoPredictions, read_class_list, read_e2e_labels
    from uglspot.engine.evaluate import evaluate

    root = shared_labels / "soccernetv2"
    classes = read_class_list(root / "class.txt")
    videos = read_e2e_labels(root / "val.json", classes, allow_past_end=True)[:10]
    perfect = [VideoPredictions(v.video, [Event(e.frame, e.label, score=1.0) for e in v.events]) for v in videos]
    result = evaluate("soccernet_tight", videos, perfect, classes)
    present = {e.label for v in videos for e in v.events}
    assert result["value"] == pytest.approx(len(present) / len(classes))  # absent classes score 0 of 17
    assert result["tight"]["a_mAP"] == result["value"] and "loose" in result


def test_one_precision_rule_for_every_inference_path() -> None:
    """A model trained with train.amp=off was once validated in fp32 but
    predicted in bf16/fp16 on a GPU: now the run's precision is recorded in
    inference.json and every path asks inference_dtype."""
    from types import SimpleNamespace

    from uglspot.engine.infer import InferenceSettings, inference_dtype, inference_settings
    from uglspot.engine.runtime import cpu_has_bf16

    cpu = torch.device("cpu")
    assert inference_dtype("off", cpu) is None and inference_dtype("auto", cpu) is None
    assert inference_dtype("fp16", cpu) is None  # a GPU-trained fp16 model runs in fp32 on a CPU, not an error
    assert inference_dtype("bf16", cpu) == (torch.bfloat16 if cpu_has_bf16() else None)
    assert inference_dtype("off", torch.device("cuda")) is None  # decided without touching a GPU
    config = SimpleNamespace(
        dataset="d", data=SimpleNamespace(fps=2.0, height=32, width=None, clip_len=8, pad=2, entity_slots=4),
        augment=SimpleNamespace(crop=None), train=SimpleNamespace(amp="off"),
        infer=SimpleNamespace(threshold=0.01, nms_window=1, batch_size=2, entities_per_event=3))
    assert inference_settings(config, ["a"], []).precision == "off"
    assert InferenceSettings(classes=["a"], clip_len=8).precision == "auto"  # models saved before it was recorded


def test_every_inference_path_asks_the_one_precision_rule() -> None:
    """No use case picks an autocast dtype of its own (amp_mode is training's)."""
    from pathlib import Path

    import uglspot.app as app_package

    for path in sorted(Path(app_package.__file__).parent.glob("*.py")):
        assert "amp_mode" not in path.read_text(), f"{path.name} decides inference precision itself"
