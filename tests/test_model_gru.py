"""The GRU heads' CPU training step (model/gru.py) against PyTorch's own GRU:
the same outputs bit for bit, the same gradients within 1e-5 in fp32 (1e-12
in fp64, and a numerical gradient check), the same few training steps of a
GRU head; and that everything else (inference, autocast, tracing) still runs
PyTorch's GRU."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.model.gru import _BidirectionalGRU, by_clip, run_gru
from uglspot.model.head import GRUHead

# (input width D, hidden width H, batch B, frames T): odd widths so that no
# row is a whole number of vector registers, one frame, the benchmark's shape
SHAPES = [(40, 24, 3, 7), (17, 9, 1, 5), (24, 24, 2, 1), (96, 64, 4, 12)]


def gru_and_input(D, H, B, T, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    gru = nn.GRU(D, H, batch_first=True, bidirectional=True).to(dtype)
    with torch.no_grad():  # biases of both signs and weights big enough to saturate some gates
        for p in gru.parameters():
            p.mul_(3)
    x = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    grad_out = torch.randn(B, T, 2 * H, dtype=dtype)
    return gru, x, grad_out


def outputs_and_grads(gru, x, grad_out, forward):
    gru.zero_grad()
    x.grad = None
    y = forward(gru, x)
    y.backward(grad_out)
    return y.detach(), [x.grad.clone()] + [p.grad.clone() for p in gru.parameters()]


def pytorch_gru(gru, x):
    return gru(x)[0]


@pytest.mark.parametrize("D, H, B, T", SHAPES)
def test_same_outputs_bit_for_bit_and_gradients_within_1e5(D, H, B, T):
    gru, x, grad_out = gru_and_input(D, H, B, T)
    assert by_clip(gru, x)
    y_ref, grads_ref = outputs_and_grads(gru, x, grad_out, pytorch_gru)
    y, grads = outputs_and_grads(gru, x, grad_out, run_gru)
    assert torch.equal(y, y_ref)
    names = ["input"] + [name for name, _ in gru.named_parameters()]
    for name, grad, ref in zip(names, grads, grads_ref):
        scale = ref.abs().max().clamp(min=1)
        assert ((grad - ref).abs().max() / scale).item() < 1e-5, name


def test_an_input_not_laid_out_batch_first_gives_the_same_bits():
    """Heads read views (a rearranged f_env, a slice): the layout must not
    change the outputs."""
    gru, _, _ = gru_and_input(40, 24, 3, 7)
    base = torch.randn(7, 3, 80)
    for x in (base[..., :40].transpose(0, 1), base[..., ::2].transpose(0, 1)):
        x = x.detach().requires_grad_()
        assert not x.is_contiguous()
        grad_out = torch.randn(3, 7, 48)
        y_ref, grads_ref = outputs_and_grads(gru, x, grad_out, pytorch_gru)
        y, grads = outputs_and_grads(gru, x, grad_out, run_gru)
        assert torch.equal(y, y_ref)
        for grad, ref in zip(grads, grads_ref):
            assert torch.allclose(grad, ref, atol=1e-5, rtol=1e-5)


def test_fp64_gradients_agree_to_1e12_and_pass_a_numerical_check():
    gru, x, grad_out = gru_and_input(7, 5, 2, 4, dtype=torch.float64)
    assert by_clip(gru, x)
    _, grads_ref = outputs_and_grads(gru, x, grad_out, pytorch_gru)
    _, grads = outputs_and_grads(gru, x, grad_out, run_gru)
    for grad, ref in zip(grads, grads_ref):
        assert torch.allclose(grad, ref, atol=1e-12, rtol=1e-12)
    # the parameters go in as inputs, so that gradcheck perturbs them too
    weights = [p.detach().clone().requires_grad_() for p in gru.parameters()]
    assert torch.autograd.gradcheck(_BidirectionalGRU.apply, (x.detach().requires_grad_(), *weights))


def test_without_an_input_gradient_the_weights_still_learn():
    gru, x, grad_out = gru_and_input(12, 8, 2, 3)
    x = x.detach()  # a stop-gradient before the head (the UGL recipe's isolated entity branch)
    assert by_clip(gru, x)
    gru.zero_grad()
    run_gru(gru, x).backward(grad_out)
    grads = [p.grad.clone() for p in gru.parameters()]
    gru.zero_grad()
    gru(x)[0].backward(grad_out)
    for grad, p in zip(grads, gru.parameters()):
        assert torch.allclose(grad, p.grad, atol=1e-5, rtol=1e-5)


def test_a_frozen_weight_gets_no_gradient_and_the_others_theirs():
    gru, x, grad_out = gru_and_input(12, 8, 2, 3)
    gru.weight_ih_l0_reverse.requires_grad_(False)
    found = []
    for forward in (pytorch_gru, run_gru):
        gru.zero_grad(set_to_none=True)
        x.grad = None
        forward(gru, x).backward(grad_out)
        found.append([x.grad] + [p.grad for p in gru.parameters()])
    assert gru.weight_ih_l0_reverse.grad is None
    for grad, ref in zip(found[1], found[0]):
        assert (grad is None) == (ref is None)
        if ref is not None:
            assert torch.allclose(grad, ref, atol=1e-5, rtol=1e-5)


def test_a_head_trains_as_with_pytorchs_gru():
    """Five AdamW steps of a GRU head, once through each GRU: the same
    weights within 1e-5."""
    torch.manual_seed(1)
    heads = [GRUHead(24, 4, 16, dropout=0.0) for _ in range(2)]
    heads[1].load_state_dict(heads[0].state_dict())
    x = torch.randn(3, 6, 24)
    target = torch.randint(0, 4, (3, 6))
    for head, by_pytorch in zip(heads, (False, True)):
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
        for _ in range(5):
            optimizer.zero_grad()
            if by_pytorch:  # the head's forward, with PyTorch's GRU
                logits = head.fc(head.dropout(head.gru(x)[0]))
            else:
                assert by_clip(head.gru, x)
                logits = head(x)
            nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten()).backward()
            optimizer.step()
    for (name, a), b in zip(heads[0].state_dict().items(), heads[1].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), name


def test_everything_but_a_cpu_training_step_runs_pytorchs_gru():
    gru, x, _ = gru_and_input(12, 8, 2, 3)
    with torch.no_grad():
        assert not by_clip(gru, x)
    with torch.inference_mode():
        assert not by_clip(gru, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not by_clip(gru, x)
    frozen = x.detach()
    for p in gru.parameters():
        p.requires_grad_(False)
    assert not by_clip(gru, frozen)  # nothing wants a gradient
    gru.requires_grad_(True)
    half, _, _ = gru_and_input(12, 8, 2, 3, dtype=torch.bfloat16)
    assert not by_clip(half, x.to(torch.bfloat16))
    one_way = nn.GRU(12, 8, batch_first=True)
    assert not by_clip(one_way, x)
    head = GRUHead(12, 3, 8)
    with warnings.catch_warnings():  # the tracer's notes on nn.GRU and dropout
        warnings.simplefilter("ignore")
        graph = str(torch.jit.trace(head, x, check_trace=False).inlined_graph)  # what the ONNX export traces
    assert "aten::gru" in graph and "_BidirectionalGRU" not in graph
