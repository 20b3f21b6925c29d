"""GSM / TSM: identity at start, exact channel moves, insertion into timm."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.model.shift import (
    GateShift, ShiftThenConv, TemporalShift, gsm_fold, insert_temporal_shift, shift_sites, to_channels_last)


@pytest.mark.parametrize("channels, fold", [(24, 8), (32, 8), (56, 16), (152, 40), (368, 92), (64, 16), (4, 4)])
def test_gsm_fold_is_a_quarter_rounded_up_to_four(channels, fold):
    assert gsm_fold(channels) == fold


def test_gsm_is_identity_at_init():
    torch.manual_seed(0)
    gsm = GateShift(24, clip_len=5).train()
    x = torch.randn(2 * 5, 24, 6, 7)
    assert torch.equal(gsm(x), x)
    gsm.eval()
    assert torch.equal(gsm(x), x)


def _hand_made(B, T, C, H=2, W=3):
    """x[b, t, c] = 1000 b + 100 (t + 1) + c, constant over space."""
    b = torch.arange(B).view(B, 1, 1, 1, 1)
    t = torch.arange(T).view(1, T, 1, 1, 1)
    c = torch.arange(C).view(1, 1, C, 1, 1)
    return (1000.0 * b + 100.0 * (t + 1) + c).expand(B, T, C, H, W).reshape(B * T, C, H, W).clone()


def test_tsm_moves_exactly_the_right_channels():
    B, T, C = 2, 4, 16
    x = _hand_made(B, T, C)
    out = TemporalShift(C, clip_len=T)(x).reshape(B, T, C, 2, 3)[..., 0, 0]
    fold = C // 8
    for b in range(B):
        for t in range(T):
            for c in range(C):
                if c < fold:
                    want = 1000 * b + 100 * (t + 2) + c if t + 1 < T else 0.0
                elif c < 2 * fold:
                    want = 1000 * b + 100 * t + c if t > 0 else 0.0
                else:
                    want = 1000 * b + 100 * (t + 1) + c
                assert out[b, t, c].item() == want, (b, t, c)


def test_gsm_with_fully_open_gate_shifts_halves_of_the_fold():
    B, T, C = 2, 3, 24
    gsm = GateShift(C, clip_len=T).eval()
    fold, half = gsm.fold, gsm.fold // 2
    with torch.no_grad():
        gsm.gate.bias.fill_(50.0)  # tanh → 1: the gate takes everything
    x = _hand_made(B, T, C)
    out = gsm(x).reshape(B, T, C, 2, 3)[..., 0, 0]
    ref = x.reshape(B, T, C, 2, 3)[..., 0, 0]
    assert torch.equal(out[:, :-1, :half], ref[:, 1:, :half])
    assert torch.equal(out[:, -1, :half], torch.zeros(B, half))
    assert torch.equal(out[:, 1:, half:fold], ref[:, :-1, half:fold])
    assert torch.equal(out[:, 0, half:fold], torch.zeros(B, fold - half))
    assert torch.equal(out[:, :, fold:], ref[:, :, fold:])


def test_gsm_half_gate_keeps_the_remainder():
    B, T, C = 1, 3, 8
    gsm = GateShift(C, clip_len=T).eval()
    with torch.no_grad():
        gsm.gate.bias.fill_(float(torch.atanh(torch.tensor(0.5))))
    x = _hand_made(B, T, C)
    out = gsm(x).reshape(B, T, C, 2, 3)[..., 0, 0]
    ref = x.reshape(B, T, C, 2, 3)[..., 0, 0]
    # channel 0 (first half): 0.5 x[t] stays, 0.5 x[t+1] arrives
    torch.testing.assert_close(out[0, 0, 0], 0.5 * ref[0, 0, 0] + 0.5 * ref[0, 1, 0])
    torch.testing.assert_close(out[0, 2, 0], 0.5 * ref[0, 2, 0])
    # channel 3 (second half of the fold of 4): 0.5 x[t] stays, 0.5 x[t-1] arrives
    torch.testing.assert_close(out[0, 1, 3], 0.5 * ref[0, 1, 3] + 0.5 * ref[0, 0, 3])
    torch.testing.assert_close(out[0, 0, 3], 0.5 * ref[0, 0, 3])


def test_shift_rejects_partial_clips():
    with pytest.raises(ValueError, match="whole number of clips"):
        TemporalShift(16, clip_len=4)(torch.zeros(6, 16, 2, 2))


@pytest.mark.parametrize("name, stages", [("regnety_002", ["s1", "s2", "s3", "s4"]),
                                          ("resnet18", ["layer1", "layer2", "layer3", "layer4"]),
                                          ("convnext_atto", ["stages.0", "stages.1", "stages.2", "stages.3"])])
@pytest.mark.parametrize("kind", ["gsm", "tsm"])
def test_insertion_wraps_every_block_first_conv(name, stages, kind):
    net = timm.create_model(name, pretrained=False, num_classes=0)
    n_sites = len(shift_sites(net))
    wrapped = insert_temporal_shift(net, kind, clip_len=4)
    assert len(wrapped) == n_sites > 0
    assert all(any(w.startswith(s + ".") for s in stages) for w in wrapped)
    modules = dict(net.named_modules())
    assert all(isinstance(modules[w], ShiftThenConv) for w in wrapped)
    assert not any(k.startswith(("stem", "conv1.", "act1")) for k in wrapped)
    x = torch.randn(2 * 4, 3, 64, 64)
    assert net(x).shape[0] == 8


def test_insertion_refuses_a_model_without_blocks():
    net = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="feature_info"):
        insert_temporal_shift(net, "gsm", 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gsm_under_autocast_and_channels_last(dtype):
    torch.manual_seed(0)
    T = 4
    net = timm.create_model("regnety_002", pretrained=False, num_classes=0)
    insert_temporal_shift(net, "gsm", clip_len=T)
    for m in net.modules():
        if isinstance(m, GateShift):
            nn.init.normal_(m.gate.weight, std=0.1)
    net = to_channels_last(net.eval())
    assert net.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2 * T, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = net(x.contiguous())
        with torch.autocast("cpu", dtype=dtype):
            out = net(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.15, rtol=0.1)


def test_gsm_on_the_cpu_gives_the_reference_conv3d_outputs_and_gradients():
    """The CPU path feeds the gate's Conv3d channels-last input (3.5x faster in
    oneDNN); its outputs and gradients are the plain NCDHW convolution's up to
    rounding, in fp32."""
    torch.manual_seed(0)
    T, C = 8, 40
    gsm = GateShift(C, T)
    nn.init.normal_(gsm.gate.weight, std=0.2)
    nn.init.normal_(gsm.gate.bias, std=0.1)
    x = torch.randn(2 * T, C, 9, 16)

    def run(module, inputs, reference):
        inputs = inputs.clone().requires_grad_(True)
        if reference:  # the same module with the gate fed contiguous NCDHW input
            conv = module.gate
            original = conv.forward
            conv.forward = lambda z: nn.Conv3d.forward(conv, z.contiguous())
        try:
            out = module(inputs)
        finally:
            if reference:
                conv.forward = original
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        grads = [inputs.grad, *(p.grad for p in module.parameters())]
        module.zero_grad()
        return out.detach(), grads

    layouts = []
    gsm.gate.register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last_3d)))
    out, grads = run(gsm, x, reference=False)
    assert layouts == [True]  # the fast path ran
    ref, ref_grads = run(gsm, x, reference=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.equal(out, x)  # the gate moved channels: the comparison is not of two identities
