"""``fusion_gate``: the GRU reads f_env + α·f_ent_env with a learned scalar α
that starts at 0, so a UGL model starts as the global-only one and lets the
fused entities in as they help (the paper's GRU reads f_ent_env alone, the
default)."""

from __future__ import annotations

import torch

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from test_model_entity_aux import B, K, N, T, _inputs
from uglspot.model import create_model


def _model(gate: bool):
    torch.manual_seed(0)
    return create_model("ugl_paper_rny002", K, clip_len=T, loss="ce", entity_source="detector", entity_feat_dim=8,
                        entity_slots=N, num_entity_classes=3, entity_selection="learned", fusion_gate=gate)


def _what_the_head_reads(model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f_env from the backbone, the fusion's output, the GRU head's input) of one forward pass."""
    seen = {}

    def keep(name, pick):
        def hook(module, inputs, output) -> None:  # returns None: the forward pass is unchanged
            seen[name] = pick(inputs, output)
        return hook

    hooks = [model.backbone.register_forward_hook(keep("env", lambda i, o: o[0])),
             model.fusion.register_forward_hook(keep("fused", lambda i, o: o)),
             model.head.register_forward_hook(keep("head", lambda i, o: i[0]))]
    frames, entities, _ = _inputs()
    with torch.no_grad():
        model.eval()(frames, entities)
    for hook in hooks:
        hook.remove()
    return seen["env"], seen["fused"], seen["head"]


def test_off_by_default_the_head_reads_the_fused_feature_alone():
    model = _model(False)
    assert model.config.fusion_gate is False and model.fusion_scale is None
    assert not any("fusion_scale" in k for k in model.state_dict())
    _, fused, head = _what_the_head_reads(model)
    torch.testing.assert_close(head, fused)


def test_on_the_model_starts_as_the_global_only_one_and_the_gate_sets_the_entities_share():
    model = _model(True)
    env, fused, head = _what_the_head_reads(model)
    assert env.shape == (B, T, env.shape[-1]) and fused.abs().sum() > 0
    torch.testing.assert_close(head, env)  # α = 0: the GRU sees f_env alone
    with torch.no_grad():
        model.fusion_scale.fill_(0.5)
    env, fused, head = _what_the_head_reads(model)
    torch.testing.assert_close(head, env + 0.5 * fused)


def test_the_gate_learns_from_the_first_step():
    model = _model(True).train()
    frames, entities, targets = _inputs()
    output = model(frames, entities)
    model.loss(output.logits, targets).backward()
    assert model.fusion_scale.grad is not None and model.fusion_scale.grad.abs() > 0


def test_a_gate_without_the_entity_branch_is_refused():
    import pytest

    from uglspot.errors import UserError

    with pytest.raises(UserError, match="fusion_gate gates the fused entities"):
        create_model("e2e_rny002", K, clip_len=T, fusion_gate=True)
