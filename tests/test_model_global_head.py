"""The global head (``global_head``), its isolation (``isolate_global``) and
the head mix (``head_mix``): the UGL recipe that cannot lose the scene.

With isolation, the backbone and the global head of a UGL model train
exactly as the global-only model with the same seed: the same weights to
the bit after several AdamW steps with dropout on, whatever the entity
branch does. Without it, the fused head's loss reaches the backbone and
the weights part (the test below checks that too, so it can fail)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _model_helpers import detector_batch, one_thread  # noqa: F401  (one_thread: autouse fixture)
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError
from uglspot.model import create_model
from uglspot.model.loss import weighted_cross_entropy

K, B, T, N = 3, 2, 8, 4


def _batch(seed: int = 0) -> tuple[torch.Tensor, EntityBatch, torch.Tensor]:
    return detector_batch(seed, K, B, T, N)


def _ugl(**options):
    torch.manual_seed(0)
    return create_model("ugl_paper_rny002", K, clip_len=T, loss="ce", entity_source="detector", entity_feat_dim=8,
                        entity_slots=N, num_entity_classes=3, entity_selection="learned", entity_aux=0.5,
                        entity_aux_output=True, dropout=0.5, **options)


def _global_only():
    torch.manual_seed(0)
    return create_model("e2e_rny002", K, clip_len=T, loss="ce", dropout=0.5)


def _train(model, steps: int = 4) -> None:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    # no reseeding: as in the engine, the dropout stream goes on from where building the model left it
    for step in range(steps):
        frames, entities, targets = _batch(step)
        output = model(frames, entities if model.config.use_entities else None)
        model.training_loss(output, targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _global_path(model) -> dict[str, torch.Tensor]:
    """A copy of the backbone's and the global head's weights, named as in the global-only model."""
    from uglspot.engine.global_only import global_path_state

    state = global_path_state(model) if model.config.use_entities else model.state_dict()
    return {k: v.clone() for k, v in state.items()}


def test_isolated_ugl_trains_its_global_path_exactly_as_the_global_only_model():
    reference = _global_only()
    start = _global_path(reference)
    _train(reference)  # each model trains right after it is built, as in the engine
    ugl = _ugl(global_head=True, isolate_global=True, head_mix="gate")
    before = _global_path(ugl)
    assert all(torch.equal(before[k], v) for k, v in start.items())  # same start
    _train(ugl)
    after, expected = _global_path(ugl), _global_path(reference)
    assert after.keys() == expected.keys()
    differ = [k for k, v in expected.items() if not torch.equal(after[k], v)]
    assert not differ, f"the global path moved apart from the global-only model: {differ[:3]}"
    assert not torch.equal(after["head.fc.weight"], before["head.fc.weight"])  # and it did train


def test_without_isolation_the_entity_branch_changes_the_backbone():
    reference = _global_only()
    _train(reference)
    ugl = _ugl(global_head=True)
    _train(ugl)
    after, expected = _global_path(ugl), _global_path(reference)
    assert any(not torch.equal(after[k], v) for k, v in expected.items() if k.startswith("backbone."))


def test_the_loss_adds_the_global_head_and_the_gate_learns_only_from_detached_logits():
    model = _ugl(global_head=True, isolate_global=True, head_mix="gate").train()
    frames, entities, targets = _batch(0)
    output = model(frames, entities)
    assert output.global_logits is not None and output.global_logits.shape == (B, T, K + 1)
    ce = lambda logits: weighted_cross_entropy(logits.float(), targets, model.config.fg_weight)  # noqa: E731
    mixed = (output.global_logits + output.logits + output.entity_logits) / 3  # the gate starts as the mean
    expected = ce(output.logits) + 0.5 * ce(output.entity_logits) + ce(output.global_logits) + ce(mixed)
    torch.testing.assert_close(model.training_loss(output, targets), expected)
    # the gate's own loss moves the gate and no head
    model.zero_grad()
    model._loss(model.mix_heads(model._mixed(output.global_logits.detach(), output.logits.detach(),
                                             output.entity_logits.detach())), targets).backward()
    assert model.head_gate.grad is not None and model.head_gate.grad.abs().sum() > 0
    assert all(p.grad is None for name, p in model.named_parameters() if name != "head_gate")


def test_inference_mixes_the_heads_per_class():
    model = _ugl(global_head=True, head_mix="gate").eval()
    frames, entities, _ = _batch(1)
    with torch.no_grad():
        model.head_gate.copy_(torch.tensor([[1.0, -1.0, 0.0, 3.0], [0.0, 2.0, 0.0, -3.0], [0.0, 0.0, 5.0, 0.0]]))
        out = model(frames, entities).logits
        f_env = model.backbone(frames)[0]
        g = model.global_head(f_env)
        e = model.entity_head(model.aam(model.env_proj(f_env), model.entity_tokens(entities), entities.mask)[0])
    weights = model.head_weights()
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(K + 1))
    assert weights[2, 2] > 0.99 and weights[0, 3] > 0.99  # class 2 from the entity classifier, 3 from global
    torch.testing.assert_close(out[..., 3], g[..., 3])
    torch.testing.assert_close(out[..., 2], e[..., 2])
    model.head_gate = None  # the plain mean
    model.config.head_mix = "mean"
    with torch.no_grad():
        mean = model(frames, entities).logits
    assert not torch.allclose(mean[..., 3], g[..., 3])


def test_options_need_what_they_act_on():
    with pytest.raises(UserError, match="global_head adds a head"):
        create_model("e2e_rny002", K, clip_len=T, global_head=True)
    with pytest.raises(UserError, match="isolate_global keeps"):
        create_model("ugl_paper_rny002", K, clip_len=T, isolate_global=True)
    assert _ugl().global_head is None and _ugl().head_gate is None


def _three_heads(model, frames, entities) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Set the gate to give class 1 to the fused head, 2 to the entity
    classifier, 3 and "no event" to the global head; return the global,
    fused and entity heads' logits, each computed by hand."""
    model.head_gate.copy_(torch.tensor([[0.1, 0.0, 0.0, 0.05], [0.0, 0.1, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0]]))
    f_env = model.backbone(frames)[0]
    env = model.env_proj(f_env)
    f_ent = model.aam(env, model.entity_tokens(entities), entities.mask)[0]
    return model.global_head(f_env), model.head(model.fusion([env, f_ent])), model.entity_head(f_ent)


def test_pick_takes_each_class_from_the_head_the_gate_weighs_most():
    model = _ugl(global_head=True, head_mix="pick").eval()
    frames, entities, _ = _batch(2)
    with torch.no_grad():
        g, f, e = _three_heads(model, frames, entities)
        output = model(frames, entities)
    picked = model.head_weights()
    assert torch.equal(picked, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]))
    # Each event class's probability is its head's own softmax, exactly: the other heads' columns
    # (and "no event", here the global head's) do not renormalise it.
    probs = model.scores(output)
    for column, head in ((1, f), (2, e), (3, g)):
        assert torch.equal(probs[..., column], torch.softmax(head.float(), dim=-1)[..., column]), column
    torch.testing.assert_close(probs[..., 0], (1 - probs[..., 1:].sum(-1)).clamp_min(0))
    torch.testing.assert_close(torch.softmax(output.logits, -1)[probs[..., 1:].sum(-1) < 1],
                               probs[probs[..., 1:].sum(-1) < 1])
    model.train()
    soft = model.head_weights()  # training keeps the soft gate, which is what learns
    assert 0 < soft.min() and soft.max() < 1


def test_pick_ensemble_reads_the_entity_side_as_one_head_where_the_gate_picks_it():
    model = _ugl(global_head=True, head_mix="pick_ensemble").eval()
    frames, entities, _ = _batch(3)
    with torch.no_grad():
        g, f, e = _three_heads(model, frames, entities)
        probs = model.scores(model(frames, entities))
    both = torch.softmax((f.float() + e.float()) / 2, dim=-1)
    assert torch.equal(probs[..., 1], both[..., 1]) and torch.equal(probs[..., 2], both[..., 2])
    assert torch.equal(probs[..., 3], torch.softmax(g.float(), dim=-1)[..., 3])  # the global head's, as pick
    assert not torch.allclose(probs[..., 1], torch.softmax(f.float(), dim=-1)[..., 1])
    # training is pick's: the same soft gate learns from the same loss
    picked = _ugl(global_head=True, head_mix="pick").train()
    picked.load_state_dict(model.state_dict())
    model.train()
    torch.manual_seed(1)
    a = model.training_loss(model(frames, entities), F.one_hot(torch.zeros(B, T, dtype=torch.long), K + 1).float())
    torch.manual_seed(1)
    b = picked.training_loss(picked(frames, entities), F.one_hot(torch.zeros(B, T, dtype=torch.long), K + 1).float())
    assert torch.equal(a, b)
