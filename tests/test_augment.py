from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from uglspot.data.augment import (
    AugmentConfig, ClipAugment, flip_boxes, gaussian_blur, normalize, random_crop, shift_hue, union_entities,
)
from uglspot.entities.batch import EntityBatch

NO_COLOUR = dict(jitter_p=0.0, blur_p=0.0, mixup=False)


def square_clip(box_px: tuple[int, int, int, int], H: int = 32, W: int = 48, T: int = 3) -> torch.Tensor:
    """A black clip (1, T, 3, H, W) uint8 with a white rectangle at pixel box x1, y1, x2, y2 (exclusive)."""
    frames = torch.zeros(1, T, 3, H, W, dtype=torch.uint8)
    x1, y1, x2, y2 = box_px
    frames[..., y1:y2, x1:x2] = 255
    return frames


def one_entity(box: list[float], T: int = 3, N: int = 2) -> EntityBatch:
    entities = EntityBatch.empty(1, T, N)
    entities.boxes[0, :, 0] = torch.tensor(box)
    entities.mask[0, :, 0] = True
    entities.score[0, :, 0] = 0.9
    return entities


def white_box(frame: torch.Tensor) -> list[float]:
    """xyxy in [0, 1] of the bright pixels of one (3, H, W) frame."""
    H, W = frame.shape[-2:]
    ys, xs = torch.nonzero(frame[0] > 0.5, as_tuple=True)
    return [xs.min().item() / W, ys.min().item() / H, (xs.max().item() + 1) / W, (ys.max().item() + 1) / H]


@pytest.mark.parametrize("box, expected", [
    ([0.1, 0.2, 0.3, 0.4], [0.7, 0.2, 0.9, 0.4]),
    ([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]),
    ([0.5, 0.1, 0.75, 0.2], [0.25, 0.1, 0.5, 0.2]),
])
def test_flip_boxes(box: list[float], expected: list[float]) -> None:
    assert flip_boxes(torch.tensor(box)).tolist() == pytest.approx(expected)


def test_flip_moves_boxes_with_the_frames() -> None:
    frames = square_clip((6, 8, 18, 16))  # W=48, H=32
    box = [6 / 48, 8 / 32, 18 / 48, 16 / 32]
    targets = torch.zeros(1, 3, 2)
    flipped_once = False
    rng = np.random.default_rng(0)
    for _ in range(8):  # each call flips with probability 1/2
        out, _, entities = ClipAugment(AugmentConfig(**NO_COLOUR), rng)(frames, targets, one_entity(box))
        moved = entities.boxes[0, 1, 0].tolist()
        assert white_box(out[0, 1]) == pytest.approx(moved)
        flipped_once |= moved != pytest.approx(box)
    assert flipped_once


def test_crop_expresses_boxes_in_the_crop_and_drops_boxes_outside() -> None:
    frames = square_clip((20, 10, 30, 20), H=40, W=60)
    inside = [20 / 60, 10 / 40, 30 / 60, 20 / 40]
    outside = [0.0, 0.9, 0.05, 1.0]  # bottom-left 3x4 px: outside every 24x32 crop that holds the square
    entities = one_entity(inside)
    entities.boxes[0, :, 1] = torch.tensor(outside)
    entities.mask[0, :, 1] = True
    rng = np.random.default_rng(5)
    held = 0
    for _ in range(10):
        out, cropped = random_crop(frames, entities, (24, 32), rng)
        assert out.shape == (1, 3, 3, 24, 32)
        if (out[0, 0, 0] > 0).sum() == 100:  # the whole square is in this crop
            assert white_box(out[0, 0].float() / 255) == pytest.approx(cropped.boxes[0, 0, 0].tolist())
            assert not cropped.mask[0, 0, 1]  # the corner box never reaches a crop that holds the square
            held += 1
    assert held
    top_left = random_crop(frames, entities, (40, 60), rng)[1]  # crop = frame: nothing changes
    assert torch.allclose(top_left.boxes, entities.boxes) and torch.equal(top_left.mask, entities.mask)


def test_crop_masks_an_entity_that_leaves_the_crop() -> None:
    frames = torch.zeros(1, 2, 3, 40, 60, dtype=torch.uint8)
    entities = one_entity([0.0, 0.0, 0.1, 0.1], T=2)  # top-left 6x4 px
    rng = np.random.default_rng(0)
    masks = set()
    for _ in range(20):
        _, cropped = random_crop(frames, entities, (20, 20), rng)
        masks.add(bool(cropped.mask[0, 0, 0]))
        if not cropped.mask[0, 0, 0]:
            box = cropped.boxes[0, 0, 0]
            assert box[2] <= box[0] or box[3] <= box[1]
    assert masks == {True, False}


def test_hue_shift_matches_torchvision() -> None:
    frames = torch.rand(2, 2, 3, 8, 8)
    shift = torch.tensor([0.13, -0.2])
    ours = shift_hue(frames, shift)
    for b in range(2):
        reference = TF.adjust_hue(frames[b], float(shift[b]))
        assert torch.allclose(ours[b], reference, atol=1e-4)
    assert torch.allclose(shift_hue(frames, torch.zeros(2)), frames, atol=1e-5)


def test_blur_keeps_constant_frames_and_smooths_an_edge() -> None:
    constant = torch.full((2, 3, 9, 9), 0.4)
    assert torch.allclose(gaussian_blur(constant, 5, 1.0), constant, atol=1e-6)
    edge = torch.zeros(1, 3, 9, 9)
    edge[..., 5:] = 1.0
    out = gaussian_blur(edge, 5, 1.0)
    assert 0.0 < out[0, 0, 4, 4] < 0.5 < out[0, 0, 4, 5] < 1.0


def test_jitter_changes_colour_only_with_its_probability() -> None:
    frames = (torch.rand(16, 2, 3, 8, 8) * 255).to(torch.uint8)
    targets = F.one_hot(torch.zeros(16, 2, dtype=torch.long), 3).float()
    config = AugmentConfig(flip=False, mixup=False, jitter_p=0.25, blur_p=0.25)
    out, _, _ = ClipAugment(config, np.random.default_rng(1))(frames, targets, None)
    changed = [(out[b] - frames[b].float() / 255).abs().max() > 1e-6 for b in range(16)]
    assert 3 <= sum(changed) <= 15  # 1 - 0.75**5 ≈ 76% of clips get at least one change
    assert out.min() >= 0 and out.max() <= 1
    off = AugmentConfig(flip=False, mixup=False, jitter_p=0.0, blur_p=0.0)
    same, _, _ = ClipAugment(off, np.random.default_rng(1))(frames, targets, None)
    assert torch.equal(same, frames.float() / 255)


def test_mixup_keeps_label_distributions_summing_to_one_and_unions_entities() -> None:
    B, T, N, K = 4, 5, 3, 3
    labels = torch.randint(0, K + 1, (B, T))
    targets = F.one_hot(labels, K + 1).float()
    frames = torch.stack([torch.full((T, 3, 6, 6), 40 * b, dtype=torch.uint8) for b in range(B)])
    entities = EntityBatch.empty(B, T, N, feat_dim=2)
    for b in range(B):  # clip b has one entity of class b, score b/10 (clip 0 none)
        if b:
            entities.mask[b, :, 0] = True
            entities.cls[b, :, 0] = b
            entities.score[b, :, 0] = b / 10
            entities.feat[b, :, 0] = b
    config = AugmentConfig(flip=False, jitter_p=0.0, blur_p=0.0, mixup=True)
    out, mixed, mixed_entities = ClipAugment(config, np.random.default_rng(2))(frames, targets, entities)
    assert torch.allclose(mixed.sum(-1), torch.ones(B, T))
    assert (mixed >= 0).all()
    assert not torch.equal(mixed, targets)
    classes = [set(mixed_entities.cls[b, 0][mixed_entities.mask[b, 0]].tolist()) for b in range(B)]
    extra = classes[1] - {1}
    shift = (extra.pop() - 1) % B if extra else B - 1  # partner of clip b is clip (b + shift) % B
    for b in range(B):
        assert classes[b] == {b, (b + shift) % B} - {0}
        scores = mixed_entities.score[b, 0][mixed_entities.mask[b, 0]]
        assert torch.equal(scores, scores.sort(descending=True).values)
        assert torch.equal(mixed_entities.feat[b, 0, :, 0][mixed_entities.mask[b, 0]],
                           mixed_entities.cls[b, 0][mixed_entities.mask[b, 0]].float())
    assert out.shape == (B, T, 3, 6, 6)


@pytest.mark.parametrize("first, second, slots, expected", [
    ([0.9, 0.5], [0.7, 0.1], 2, [0.9, 0.7]),
    ([0.9, None], [0.7, 0.8], 2, [0.9, 0.8]),
    ([None, None], [0.3, None], 2, [0.3, None]),
    ([0.2, 0.1], [0.3, 0.4], 3, [0.4, 0.3, 0.2]),
])
def test_union_keeps_the_highest_scores(first: list, second: list, slots: int, expected: list) -> None:
    def batch(scores: list) -> EntityBatch:
        mask = torch.tensor([s is not None for s in scores]).view(1, 1, -1)
        score = torch.tensor([s or 0.0 for s in scores]).view(1, 1, -1)
        return EntityBatch(boxes=torch.zeros(1, 1, len(scores), 4), cls=torch.zeros(1, 1, len(scores), dtype=torch.long),
                           score=score, mask=mask)
    merged = union_entities(batch(first), batch(second), slots)
    got = [round(s, 6) if m else None for s, m in zip(merged.score[0, 0].tolist(), merged.mask[0, 0].tolist())]
    assert got == pytest.approx(expected)


def test_same_generator_state_gives_the_same_augmentation() -> None:
    frames = (torch.rand(3, 2, 3, 10, 12) * 255).to(torch.uint8)
    targets = F.one_hot(torch.randint(0, 3, (3, 2)), 3).float()
    config = AugmentConfig(crop=[8, 8], jitter_p=0.5, blur_p=0.5)
    first = ClipAugment(config, np.random.default_rng(9))(frames, targets, None)
    second = ClipAugment(config, np.random.default_rng(9))(frames, targets, None)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_normalize_uses_unit_scale_statistics() -> None:
    frames = torch.full((1, 1, 3, 2, 2), 0.5)
    out = normalize(frames, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    assert out[0, 0, :, 0, 0].tolist() == pytest.approx([0.0, 1.0, 0.5])


def test_mixup_is_skipped_for_a_single_clip() -> None:
    frames = torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)
    targets = F.one_hot(torch.tensor([[0, 1]]), 2).float()
    _, mixed, _ = ClipAugment(AugmentConfig(flip=False, jitter_p=0.0, blur_p=0.0), np.random.default_rng())(
        frames, targets, None)
    assert torch.equal(mixed, targets)
