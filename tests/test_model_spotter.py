"""Every registered variant at tiny size on CPU: shapes, finite outputs,
a gradient for every trainable parameter; config and padding behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _model_helpers import B, H, N, T, TINY, W, one_thread, open_gates, tiny_inputs  # noqa: F401  (one_thread: autouse fixture)
from uglspot.config import from_dict, to_dict
from uglspot.errors import UserError
from uglspot.model import SpotterConfig, create_model, list_models

K = 3

# the uglr_* variants read detector features (the release's GLIP features)
CASES = [(name, {"entity_feat_dim": 12} if name.startswith("uglr_") else {}) for name in list_models()] + [
    ("ugl_rny002", {"entity_source": "detector", "entity_feat_dim": 12}),
    ("ugl_rny002", {"shift": "tsm", "loss": "ce"}),
    ("ugl_rny002", {"shift": "none", "num_entity_classes": 0}),
    ("e2e_rny002", {"shift": "tsm", "loss": "focal", "focal_alpha": 0.25}),
    ("ugl_rny002", {"entity_source": "detector", "entity_feat_dim": 12, "entity_selection": "learned",
                    "entity_geometry": True, "prior": 0.01}),
]


def test_registry_has_the_eight_variants():
    assert set(list_models()) == {"ugl_rny008", "ugl_rny002", "ugl_paper_rny008", "ugl_paper_rny002",
                                  "uglr_rny008", "uglr_rny002", "e2e_rny008", "e2e_rny002"}


def test_ugl_variants_carry_the_recipe_and_the_paper_variants_the_paper():
    recipe, paper = create_model("ugl_rny002", K, **TINY), create_model("ugl_paper_rny002", K, **TINY)
    assert recipe.global_head is not None and recipe.head_gate is not None and recipe.entity_head is not None
    assert recipe.config.isolate_global and recipe.config.entity_selection == "learned"
    assert paper.global_head is None and paper.head_gate is None and paper.entity_head is None
    assert paper.config.entity_selection == "hard" and not paper.config.entity_aux_output
    # with the entity branch off, the recipe's entity options go too (the global-only network)
    plain = create_model("ugl_rny002", K, use_entities=False, **TINY)
    assert plain.global_head is None and plain.head_gate is None and not plain.config.entity_aux_output


@pytest.mark.parametrize("name, overrides", CASES, ids=[f"{n}-{'-'.join(map(str, o.values())) or 'default'}"
                                                         for n, o in CASES])
def test_variant_forward_backward(name, overrides):
    torch.manual_seed(0)
    model = create_model(name, K, **TINY, **overrides).train()
    open_gates(model)
    x, entities = tiny_inputs(feat_dim=overrides.get("entity_feat_dim"))
    out = model(x, entities)
    assert out.logits.shape == (B, T, K + 1)
    assert torch.isfinite(out.logits).all()
    if model.config.use_entities:
        assert out.attention.shape == (B, T, N)
        assert (out.attention[~entities.mask] == 0).all()
    else:
        assert out.attention is None
    targets = F.one_hot(torch.randint(0, K + 1, (B, T)), K + 1).float()
    loss = model.training_loss(out, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and
               (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient for {missing}"


def test_short_clip_is_padded_and_cut_back():
    torch.manual_seed(0)
    model = create_model("ugl_rny002", K, **TINY).eval()
    open_gates(model)
    x, entities = tiny_inputs(frames=3)
    with torch.no_grad():
        out = model(x, entities)
        f_short, _ = model.backbone(x)
        f_padded, _ = model.backbone(torch.cat([x, torch.zeros(B, 1, 3, H, W)], dim=1))
    assert out.logits.shape == (B, 3, K + 1)
    torch.testing.assert_close(f_short, f_padded[:, :3])
    with pytest.raises(ValueError, match="longer than the model's clip_len"):
        model(*tiny_inputs(frames=5))


def test_entities_none_means_no_entity():
    torch.manual_seed(0)
    model = create_model("ugl_rny002", K, **TINY).eval()
    x, entities = tiny_inputs()
    entities.mask[:] = False
    with torch.no_grad():
        a = model(x, None)
        b = model(x, entities)
    assert a.attention is None
    torch.testing.assert_close(a.logits, b.logits)


def test_probabilities_follow_the_loss():
    logits = torch.randn(2, 3, K + 1)
    focal = create_model("ugl_rny002", K, **TINY)
    ce = create_model("e2e_rny002", K, **TINY)
    assert focal.config.loss == "focal" and ce.config.loss == "ce"
    torch.testing.assert_close(focal.probabilities(logits), 1 / (1 + torch.exp(-logits)))
    probs = ce.probabilities(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(probs, torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True))


def test_config_round_trips_through_plain_data():
    model = create_model("ugl_rny002", 5, clip_len=16, focal_alpha=0.25)
    data = to_dict(model.config)
    assert from_dict(SpotterConfig, data) == model.config
    assert data["pixel_mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name, overrides, message", [
    ("ugl_rny999", {}, "unknown model 'ugl_rny999'; choose one of"),
    ("ugl_rny002", {"entity_slotz": 3}, "unknown key\\(s\\) entity_slotz"),
    ("ugl_rny002", {"shift": "gsn"}, "'gsn' is not one of"),
    ("ugl_rny002", {"clip_len": 0}, "clip_len must be positive"),
    ("ugl_rny002", {"backbone": "regnety_999"}, "not a timm model"),
    ("ugl_rny002", {"attn_heads": 7}, "not divisible by attn_heads 7"),
    ("ugl_rny002", {"entity_selection": "topk"}, "'topk' is not one of"),
    ("ugl_rny002", {"prior": 0.5}, "prior must be in \\(0, 1/\\(K\\+1\\)\\)"),
    ("e2e_rny002", {"prior": 0.0}, "prior must be in"),
    ("uglr_rny002", {"entity_selection": "learned"}, "the released UGL layers: it needs entity_selection hard"),
    ("uglr_rny002", {"num_entity_classes": 6}, "num_entity_classes 0"),
])
def test_bad_configs_are_user_errors(name, overrides, message):
    with pytest.raises(UserError, match=message):
        create_model(name, K, **overrides)


def test_ugl_trains_under_bf16_autocast_in_channels_last():
    from uglspot.model.shift import to_channels_last

    torch.manual_seed(0)
    model = to_channels_last(create_model("ugl_rny002", K, **TINY).train())
    open_gates(model)
    x, entities = tiny_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, entities)
        loss = model.loss(out.logits, F.one_hot(torch.zeros(B, T, dtype=torch.long), K + 1).float())
    loss.backward()
    assert torch.isfinite(out.logits.float()).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
