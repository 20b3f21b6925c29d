"""Entity tokens and the Adaptive Attention Mechanism against hand-made
cases and a plain per-frame reference."""

from __future__ import annotations

import math

import pytest
import torch

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.entities.batch import EntityBatch
from uglspot.model.entity import KEEP_RTOL, AdaptiveAttention, EntityTokens, roi_features
from uglspot.model.packed import Slots


def aam_per_frame_reference(aam: AdaptiveAttention, env, tokens, mask):
    """The AAM written the slow, obvious way: one frame at a time, only its
    valid entities, no padding anywhere."""
    B, T, N, D = tokens.shape
    f_ent = torch.zeros(B, T, D)
    attention = torch.zeros(B, T, N)
    for b in range(B):
        for t in range(T):
            valid = mask[b, t].nonzero().flatten()
            if len(valid) == 0:
                continue
            ent = tokens[b, t, valid]
            weights = torch.softmax(torch.linalg.vector_norm(env[b, t] + ent, dim=-1), dim=0)
            kept = weights >= (1.0 / len(valid)) * (1 - KEEP_RTOL)
            attention[b, t, valid[kept]] = weights[kept]
            encoded = aam.encoder(ent[kept].unsqueeze(0))[0]
            f_ent[b, t] = encoded.mean(dim=0)
    return f_ent, attention


def _random_case(seed=0, B=2, T=5, N=6, D=16):
    g = torch.Generator().manual_seed(seed)
    env = torch.randn(B, T, D, generator=g)
    tokens = torch.randn(B, T, N, D, generator=g)
    mask = torch.rand(B, T, N, generator=g) < 0.6
    mask[0, 0] = False  # a frame without entities
    mask[1, 2] = True  # a full frame
    mask[1, 3] = False
    mask[1, 3, 4] = True  # a single entity
    return env, tokens, mask


def test_aam_equals_per_frame_reference():
    torch.manual_seed(0)
    aam = AdaptiveAttention(16, heads=8).eval()
    env, tokens, mask = _random_case()
    with torch.no_grad():
        f_ent, attention = aam(env, tokens, mask)
        ref_f, ref_attention = aam_per_frame_reference(aam, env, tokens, mask)
    torch.testing.assert_close(f_ent, ref_f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention, ref_attention, atol=1e-6, rtol=1e-6)


def test_aam_ignores_padded_slots():
    torch.manual_seed(0)
    aam = AdaptiveAttention(16, heads=8).eval()
    env, tokens, mask = _random_case(seed=1)
    garbage = tokens.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 16) * 100
    garbage[0, 0, 0] = float("nan")
    with torch.no_grad():
        a = aam(env, tokens, mask)
        b = aam(env, garbage, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.isfinite(b[0]).all()


@pytest.mark.parametrize("relevance, valid, kept", [
    # softmax [1,1,1,5]/8: only the last reaches 1/4
    ([0.0, 0.0, 0.0, math.log(5)], [1, 1, 1, 1], [0, 0, 0, 1]),
    # [3,3,1,1]/8: the two at 3/8 pass 1/4
    ([math.log(3), math.log(3), 0.0, 0.0], [1, 1, 1, 1], [1, 1, 0, 0]),
    # all equal: every weight is exactly the uniform weight, all kept
    ([2.0, 2.0, 2.0, 9.0], [1, 1, 1, 0], [1, 1, 1, 0]),
    # padded slots neither count in n_valid nor get kept, however relevant
    ([9.0, 0.0, 9.0, math.log(2)], [0, 1, 0, 1], [0, 0, 0, 1]),
    # one entity: always kept
    ([0.5, 7.0, 7.0, 7.0], [1, 0, 0, 0], [1, 0, 0, 0]),
    # none
    ([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [0, 0, 0, 0]),
])
def test_hard_attention_keeps_exactly_those_at_or_above_uniform(relevance, valid, kept):
    D = 8
    env = torch.zeros(1, 1, D)
    tokens = torch.zeros(1, 1, 4, D)
    tokens[0, 0, :, 0] = torch.tensor(relevance)  # ‖env + token‖ = relevance
    mask = torch.tensor(valid, dtype=torch.bool).view(1, 1, 4)
    slots = Slots.of(mask)
    weights, keep = AdaptiveAttention(D, heads=8).select(env, slots.gather(tokens), slots)
    assert keep.flatten().tolist() == [bool(k) for k in kept]
    if any(valid):
        torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    assert (weights[~mask] == 0).all()


def test_aam_gives_zeros_without_entities():
    aam = AdaptiveAttention(16, heads=8).train()
    env, tokens, _ = _random_case()
    mask = torch.zeros(2, 5, 6, dtype=torch.bool)
    f_ent, attention = aam(env, tokens, mask)
    assert torch.equal(f_ent, torch.zeros_like(f_ent))
    assert torch.equal(attention, torch.zeros_like(attention))


def test_aam_zero_rows_only_where_empty():
    aam = AdaptiveAttention(16, heads=8).eval()
    env, tokens, mask = _random_case()
    with torch.no_grad():
        f_ent, _ = aam(env, tokens, mask)
    empty = ~mask.any(-1)
    assert (f_ent[empty] == 0).all()
    assert (f_ent[~empty].abs().sum(-1) > 0).all()


def test_roi_features_scale_boxes_to_the_map():
    # map 2×4 (stride 32 on a 64×128 frame); channel 0 = column, 1 = row
    fmap = torch.stack([torch.arange(4.0).expand(2, 4), torch.arange(2.0).unsqueeze(1).expand(2, 4)])
    fmap = fmap.unsqueeze(0)  # (1, 2, 2, 4)
    boxes = torch.tensor([0.25, 0.25, 0.75, 0.75]).view(1, 1, 1, 4)  # x 32..96 px, y 16..48 px
    out = roi_features(fmap, boxes.view(1, 4), Slots.of(torch.ones(1, 1, 1, dtype=torch.bool)), (64, 128), stride=32,
                       roi_size=2)
    # box centre in map units: x 2.0, y 1.0; aligned RoIAlign samples at centre − 0.5
    torch.testing.assert_close(out[0], torch.tensor([1.5, 0.5]))


def test_entity_tokens_detector_source_needs_features():
    tokens = EntityTokens("detector", in_dim=8, width=16, num_classes=3)
    batch = EntityBatch.empty(1, 2, 3)
    with pytest.raises(ValueError, match="entity features"):
        tokens(batch)
    batch = EntityBatch.empty(1, 2, 3, feat_dim=8)
    assert tokens(batch).shape == (1, 2, 3, 16)
    with pytest.raises(ValueError, match="entity_feat_dim 8"):
        tokens(EntityBatch.empty(1, 2, 3, feat_dim=5))


def aam_learned_reference(aam: AdaptiveAttention, env, tokens, mask):
    """The learned selection the slow way: per frame, softmax of the scorer over
    its valid entities, the encoder over all of them, the weighted sum."""
    B, T, N, D = tokens.shape
    f_ent, attention = torch.zeros(B, T, D), torch.zeros(B, T, N)
    for b in range(B):
        for t in range(T):
            valid = mask[b, t].nonzero().flatten()
            if len(valid) == 0:
                continue
            ent = tokens[b, t, valid]
            weights = torch.softmax(aam.scorer(env[b, t] + ent).squeeze(-1), dim=0)
            kept = weights >= (1.0 / len(valid)) * (1 - KEEP_RTOL)
            attention[b, t, valid[kept]] = weights[kept]
            encoded = aam.encoder(ent.unsqueeze(0))[0]
            f_ent[b, t] = (weights.unsqueeze(-1) * encoded).sum(dim=0)
    return f_ent, attention


def test_learned_selection_equals_per_frame_reference():
    torch.manual_seed(0)
    aam = AdaptiveAttention(16, heads=8, selection="learned").eval()
    env, tokens, mask = _random_case(seed=3)
    with torch.no_grad():
        f_ent, attention = aam(env, tokens, mask)
        ref_f, ref_attention = aam_learned_reference(aam, env, tokens, mask)
    torch.testing.assert_close(f_ent, ref_f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention, ref_attention, atol=1e-6, rtol=1e-6)
    assert not f_ent[0, 0].any()  # a frame without entities gives zeros


@pytest.mark.parametrize("selection, dropped_get_gradient", [("hard", False), ("learned", True)])
def test_only_the_learned_selection_gives_dropped_entities_a_gradient(selection, dropped_get_gradient):
    """The reason for the learned selection: under the paper's rule an entity
    below the uniform weight is cut out of the graph, so nothing can teach the
    model to keep it."""
    torch.manual_seed(1)
    aam = AdaptiveAttention(16, heads=8, selection=selection).eval()
    env, tokens, mask = _random_case(seed=4)
    tokens.requires_grad_(True)
    f_ent, attention = aam(env, tokens, mask)
    f_ent.square().sum().backward()
    dropped = mask & (attention == 0)
    assert dropped.any()
    reached = tokens.grad.abs().sum(-1)[dropped] > 0
    assert bool(reached.all()) == dropped_get_gradient and bool(reached.any()) == dropped_get_gradient
    assert (tokens.grad.abs().sum(-1)[~mask] == 0).all()  # empty slots never matter
    if selection == "learned":
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aam.scorer.parameters())


def test_entity_tokens_geometry_reads_box_and_score_only_when_asked():
    torch.manual_seed(0)
    entities = EntityBatch.empty(1, 2, 3, feat_dim=8)
    entities.feat = torch.randn(1, 2, 3, 8)
    entities.mask[:] = True
    moved = EntityBatch(entities.boxes + 0.25, entities.cls, entities.score + 0.5, entities.mask, entities.feat)
    for geometry in (False, True):
        tokens = EntityTokens("detector", 8, 16, num_classes=6, geometry=geometry)
        same = torch.allclose(tokens(entities), tokens(moved))
        assert same != geometry


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="selection"):
        AdaptiveAttention(16, heads=8, selection="topk")
