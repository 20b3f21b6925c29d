"""The entity branch runs its per-entity layers on the filled slots alone
(model/packed.py), and RoI pooling is a matrix product. Each part is checked
against the dense computation it replaced (torchvision's roi_align for the
pooling), kept here as written before: the same numbers within 1e-5 in fp32,
in evaluation and, with the same seed, in training (the dropout masks are the
dense layer's), gradients included; and the state dict keeps its keys, so
saved models load."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import nn
from torchvision.ops import roi_align

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model
from uglspot.model.entity import KEEP_RTOL, AdaptiveAttention, EntityTokens, roi_features
from uglspot.model.fusion import EnvEntityFusion
from uglspot.model.packed import Slots, encoder_layer

TOL = dict(atol=1e-5, rtol=1e-5)


# ---- the dense computation as it was, one function per part ----

def dense_roi_features(fmap, boxes, image_size, stride, roi_size=2):
    """Every slot's box, filled or not: (B, T, N, 4) → (B, T, N, C')."""
    B, T, N, _ = boxes.shape
    H, W = image_size
    pixels = (boxes.float() * boxes.new_tensor([W, H, W, H])).reshape(B * T * N, 4)
    frame_index = torch.arange(B * T).repeat_interleave(N)
    rois = torch.cat([frame_index.to(pixels.dtype).unsqueeze(1), pixels], dim=1)
    pooled = roi_align(fmap, rois, output_size=roi_size, spatial_scale=1.0 / stride, sampling_ratio=2, aligned=True)
    return pooled.mean(dim=(2, 3)).reshape(B, T, N, -1)


def dense_embed(module: EntityTokens, feat, entities):
    tokens = module.proj(module.norm(feat))
    if module.cls_embed is not None:
        tokens = tokens + module.cls_embed(entities.cls.clamp(0, module.num_classes - 1))
    if module.geometry is not None:
        boxes = entities.boxes
        where = torch.cat([boxes, boxes[..., 2:] - boxes[..., :2], entities.score.unsqueeze(-1)], dim=-1)
        tokens = tokens + module.geometry(where)
    return tokens


def dense_select(aam: AdaptiveAttention, env, tokens, mask):
    if aam.scorer is None:
        relevance = torch.linalg.vector_norm((env.unsqueeze(2) + tokens).float(), dim=-1)
    else:
        relevance = aam.scorer(env.unsqueeze(2) + tokens).squeeze(-1).float()
    relevance = relevance.masked_fill(~mask, torch.finfo(relevance.dtype).min)
    weights = relevance.softmax(dim=-1) * mask
    n_valid = mask.sum(dim=-1, keepdim=True).clamp(min=1)
    return weights, mask & (weights * n_valid >= 1.0 - KEEP_RTOL)


def dense_encode(aam: AdaptiveAttention, tokens, weights, keep, mask):
    B = tokens.shape[0]
    attend = keep if aam.selection == "hard" else mask
    zero = torch.zeros((), dtype=tokens.dtype)
    has_any = attend.any(dim=-1, keepdim=True)
    flat = rearrange(torch.where(attend.unsqueeze(-1), tokens, zero), "b t n d -> (b t) n d")
    encoded = aam.encoder(flat, src_key_padding_mask=rearrange(~attend & has_any, "b t n -> (b t) n"))
    encoded = torch.where(attend.unsqueeze(-1), rearrange(encoded, "(b t) n d -> b t n d", b=B), zero)
    if aam.selection == "hard":
        return encoded.sum(dim=2) / keep.sum(dim=-1, keepdim=True).clamp(min=1).to(encoded.dtype)
    return (encoded * weights.unsqueeze(-1)).sum(dim=2)


def dense_fusion(fusion: EnvEntityFusion, features):
    B, T, D = features[0].shape
    tokens = rearrange(torch.stack(features, dim=2), "b t s d -> (b t) s d")
    return fusion.encoder(tokens).mean(dim=1).reshape(B, T, D)


# ---- cases ----

def case(seed=0, B=2, T=5, N=7, D=16, C=12, fill=0.4):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(B, T, N, 2, generator=g) * 0.7
    mask = torch.rand(B, T, N, generator=g) < fill
    mask[0, 0] = False  # a frame without entities
    mask[1, 2] = True  # a full frame
    mask[1, 3] = False
    mask[1, 3, 4] = True  # a single entity
    entities = EntityBatch(boxes=torch.cat([xy, xy + 0.05 + 0.25 * torch.rand(B, T, N, 2, generator=g)], -1),
                           cls=torch.randint(0, 9, (B, T, N), generator=g), score=torch.rand(B, T, N, generator=g),
                           mask=mask, feat=torch.randn(B, T, N, C, generator=g))
    env = torch.randn(B, T, D, generator=g)
    tokens = torch.randn(B, T, N, D, generator=g)
    fmap = torch.randn(B * T, C, 4, 6, generator=g)
    return env, tokens, entities, fmap


def seeded(fn, seed=11):
    torch.manual_seed(seed)
    return fn()


def grads(outputs, inputs, seed=3):
    """Gradients of a fixed random projection of ``outputs`` with respect to ``inputs``."""
    g = torch.Generator().manual_seed(seed)
    total = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outputs)
    return torch.autograd.grad(total, inputs, allow_unused=True)


# ---- the parts ----

@pytest.mark.parametrize("roi_size", [1, 2, 3])
def test_roi_pooling_of_the_filled_slots_is_torchvision_roi_align_there(roi_size):
    """The matrix-product RoIAlign against torchvision's op, on boxes inside,
    across and beyond the frame's borders, tiny and empty ones included."""
    _, _, entities, fmap = case()
    boxes = entities.boxes.clone()
    boxes[0, 1, :4] = torch.tensor([[0.0, 0.0, 1.0, 1.0], [-0.3, -0.2, 0.4, 0.5], [0.8, 0.7, 1.4, 1.2],
                                    [1.1, 1.05, 1.3, 1.2]])  # whole frame, over the top left, bottom right, outside
    boxes[1, 0, :3] = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.31, 0.62, 0.3102, 0.6201], [0.999, 0.0, 1.0, 0.001]])
    mask = entities.mask.clone()
    mask[0, 1, :4] = mask[1, 0, :3] = True
    fmap.requires_grad_(True)
    slots = Slots.of(mask)
    dense = dense_roi_features(fmap, boxes, (128, 192), 32, roi_size)
    packed = roi_features(fmap, slots.gather(boxes), slots, (128, 192), 32, roi_size)
    torch.testing.assert_close(packed, dense[mask], **TOL)
    # the empty slots' boxes never reached the loss: the map's gradient is the same
    torch.testing.assert_close(grads([packed], [fmap])[0], grads([dense[mask]], [fmap])[0], **TOL)


@pytest.mark.parametrize("source", ["detector", "backbone"])
@pytest.mark.parametrize("geometry", [False, True])
def test_entity_tokens_of_the_filled_slots_are_the_dense_tokens_there(source, geometry):
    _, _, entities, fmap = case(seed=1)
    torch.manual_seed(0)
    module = EntityTokens(source, 12, 16, num_classes=6, geometry=geometry)
    slots = Slots.of(entities.mask)
    feat = entities.feat if source == "detector" else dense_roi_features(fmap, entities.boxes, (128, 192), 32)
    dense = dense_embed(module, feat, entities)
    packed = module(entities, fmap, (128, 192), 32, slots)
    torch.testing.assert_close(packed, dense[entities.mask], **TOL)
    laid_out = module(entities, fmap, (128, 192), 32)  # (B, T, N, D), zeros where no entity
    torch.testing.assert_close(laid_out[entities.mask], dense[entities.mask], **TOL)
    assert not laid_out[~entities.mask].any()
    params = list(module.parameters())
    for a, b in zip(grads([packed], params), grads([dense[entities.mask]], params)):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("selection", ["hard", "learned"])
def test_selection_on_packed_tokens_is_the_dense_selection(selection):
    env, tokens, entities, _ = case(seed=2)
    torch.manual_seed(0)
    aam = AdaptiveAttention(16, heads=8, selection=selection)
    slots = Slots.of(entities.mask)
    weights, keep = aam.select(env, slots.gather(tokens), slots)
    ref_weights, ref_keep = dense_select(aam, env, tokens, entities.mask)
    assert torch.equal(keep, ref_keep)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("selection", ["hard", "learned"])
@pytest.mark.parametrize("train", [False, True])
def test_entity_encoder_on_packed_tokens_is_the_dense_encoder(selection, train):
    """In training the dropout masks are the dense layer's own (same seed,
    same draws), so the outputs agree there too; if a PyTorch release draws
    them in another order, ``dropped`` in model/packed.py must follow."""
    env, tokens, entities, _ = case(seed=3)
    torch.manual_seed(0)
    aam = AdaptiveAttention(16, heads=8, selection=selection).train(train)
    tokens.requires_grad_(True)
    mask = entities.mask
    slots = Slots.of(mask)
    weights, keep = dense_select(aam, env, tokens, mask)
    weights = weights.detach().requires_grad_(True)
    packed = seeded(lambda: aam.encode(slots.gather(tokens), weights, keep, slots))
    dense = seeded(lambda: dense_encode(aam, tokens, weights, keep, mask))
    torch.testing.assert_close(packed, dense, **TOL)
    assert not packed[~mask.any(-1)].any()  # frames without an entity get zeros
    inputs = [tokens, weights, *aam.encoder.parameters()]
    for a, b in zip(grads([packed], inputs), grads([dense], inputs)):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("train", [False, True])
def test_fusion_computed_directly_is_the_encoder_call(train):
    env, _, _, _ = case(seed=4)
    f_ent = torch.randn_like(env)
    torch.manual_seed(0)
    fusion = EnvEntityFusion(16, heads=8).train(train)
    env.requires_grad_(True)
    f_ent.requires_grad_(True)
    direct = seeded(lambda: fusion([env, f_ent]))
    dense = seeded(lambda: dense_fusion(fusion, [env, f_ent]))
    torch.testing.assert_close(direct, dense, **TOL)
    inputs = [env, f_ent, *fusion.parameters()]
    for a, b in zip(grads([direct], inputs), grads([dense], inputs)):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("train", [False, True])
def test_encoder_layer_on_rows_is_the_module_on_padded_frames(train):
    """The packed layer against ``nn.TransformerEncoderLayer`` itself, with a
    key-padding mask, on the rows that hold a token."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(24, 4, 48, 0.1, batch_first=True).train(train)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 9, 24, generator=g)
    mask = torch.rand(3, 2, 9, generator=g) < 0.5
    mask[..., 0] = True
    slots = Slots.of(mask)
    rows = seeded(lambda: encoder_layer(layer, slots.gather(x), slots, ~mask))
    dense = seeded(lambda: layer(rearrange(x, "b t n d -> (b t) n d"),
                                 src_key_padding_mask=rearrange(~mask, "b t n -> (b t) n")))
    torch.testing.assert_close(rows, rearrange(dense, "(b t) n d -> b t n d", b=3)[mask], **TOL)


def test_no_entity_anywhere_gives_zeros_and_trains():
    env, tokens, entities, fmap = case(seed=6)
    mask = torch.zeros_like(entities.mask)
    aam = AdaptiveAttention(16, heads=8, selection="learned").train()
    tokens.requires_grad_(True)
    f_ent, attention = aam(env, tokens, mask)
    assert not f_ent.any() and not attention.any()
    f_ent.sum().backward()
    module = EntityTokens("backbone", 12, 16)
    assert module(EntityBatch(entities.boxes, entities.cls, entities.score, mask), fmap, (128, 192), 32).shape == \
        tokens.shape


# ---- the model ----

ENTITY_BRANCH_KEYS = [
    "env_proj.0.weight", "env_proj.0.bias", "env_proj.1.weight", "env_proj.1.bias",
    "entity_tokens.norm.weight", "entity_tokens.norm.bias", "entity_tokens.proj.weight", "entity_tokens.proj.bias",
    "entity_tokens.cls_embed.weight",
    *(f"{module}.encoder.{name}" for module in ("aam", "fusion") for name in (
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")),
    "aam.scorer.0.weight", "aam.scorer.0.bias", "aam.scorer.1.weight", "aam.scorer.1.bias",
    "aam.scorer.3.weight", "aam.scorer.3.bias",
    "entity_head.weight", "entity_head.bias",
]


def test_state_dict_keys_are_the_ones_saved_models_carry():
    model = create_model("ugl_rny002", 3, clip_len=4)
    keys = [k for k in model.state_dict() if not k.startswith(("backbone.", "head.", "global_head.", "head_gate"))]
    assert sorted(keys) == sorted(ENTITY_BRANCH_KEYS)
