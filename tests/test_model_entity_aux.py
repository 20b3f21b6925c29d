"""The entity branch's auxiliary loss (``entity_aux``): a per-frame
classifier on f_ent alone, trained beside the main head and dropped at
inference, so the entity selection gets a signal that does not wait for
the fused head to start reading the entities."""

from __future__ import annotations

import pytest
import torch

from _model_helpers import detector_batch, one_thread  # noqa: F401  (one_thread: autouse fixture)
from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model
from uglspot.model.loss import weighted_cross_entropy

K, B, T, N = 3, 2, 8, 4


def _inputs(seed: int = 0) -> tuple[torch.Tensor, EntityBatch, torch.Tensor]:
    return detector_batch(seed, K, B, T, N)


def _model(aux: float, selection: str = "learned"):
    torch.manual_seed(0)
    return create_model("ugl_paper_rny002", K, clip_len=T, loss="ce", entity_source="detector", entity_feat_dim=8,
                        entity_slots=N, num_entity_classes=3, entity_selection=selection, entity_aux=aux)


def test_off_by_default_and_no_extra_weights():
    model = _model(0.0)
    assert model.entity_head is None
    frames, entities, _ = _inputs()
    assert model.train()(frames, entities).entity_logits is None


def test_loss_is_the_main_loss_plus_the_weighted_entity_loss():
    model = _model(0.5).train()
    frames, entities, targets = _inputs()
    output = model(frames, entities)
    assert output.entity_logits is not None and output.entity_logits.shape == (B, T, K + 1)
    expected = (weighted_cross_entropy(output.logits, targets, model.config.fg_weight)
                + 0.5 * weighted_cross_entropy(output.entity_logits, targets, model.config.fg_weight))
    torch.testing.assert_close(model.loss(output.logits, targets, output.entity_logits), expected)
    # inference drops the auxiliary head: same logits, no entity logits
    model.eval()
    with torch.no_grad():
        assert model(frames, entities).entity_logits is None


def test_the_entity_loss_alone_trains_the_selection_and_not_the_main_head():
    model = _model(1.0).train()
    frames, entities, targets = _inputs()
    output = model(frames, entities)
    (model.config.entity_aux * weighted_cross_entropy(output.entity_logits, targets)).backward()
    scorer = [p.grad for p in model.aam.scorer.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in scorer)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.head.parameters())


def test_negative_weight_is_refused():
    from uglspot.errors import UserError

    with pytest.raises(UserError, match="entity_aux must be >= 0"):
        _model(-0.1)


def test_a_checkpoint_without_the_auxiliary_head_loads_into_a_model_without_it(tmp_path):
    from uglspot.model import UGLSpotter

    state = _model(0.0).state_dict()
    assert not any(k.startswith("entity_head") for k in state)
    assert any(k.startswith("entity_head") for k in _model(0.5).state_dict())
    UGLSpotter(_model(0.0).config).load_state_dict(state)  # strict: the same keys


def test_entity_aux_output_averages_the_two_heads_at_inference_only():
    torch.manual_seed(0)
    frames, entities, targets = _inputs()
    plain, summed = _model(0.5), _model(0.5)
    summed.config.entity_aux_output = True
    summed.load_state_dict(plain.state_dict())
    plain.eval(), summed.eval()
    with torch.no_grad():
        main = plain(frames, entities).logits
        box = {}
        hook = summed.aam.register_forward_hook(lambda module, args, out: box.__setitem__("f_ent", out[0]))
        both = summed(frames, entities).logits
        hook.remove()
        torch.testing.assert_close(both, (main + summed.entity_head(box["f_ent"])) / 2)
    # training is unchanged: the main logits alone, the entity logits apart
    plain.train(), summed.train()
    torch.manual_seed(1)
    a = plain(frames, entities)
    torch.manual_seed(1)
    b = summed(frames, entities)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.entity_logits, b.entity_logits)


def test_entity_aux_output_needs_the_entity_classifier():
    from uglspot.errors import UserError

    with pytest.raises(UserError, match="entity_aux_output needs"):
        create_model("ugl_paper_rny002", K, clip_len=T, entity_aux_output=True)
