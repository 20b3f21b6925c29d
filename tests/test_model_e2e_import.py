"""``uglspot import-e2e-spot`` on checkpoints laid out like E2E-Spot's.

What this can prove: the converter maps every key of E2E-Spot's state-dict
layout (written here from its documented naming: ``_features`` = timm RegNet-Y
with ``conv1.net`` / ``conv1.gsm.{bn,conv3D}``, ``_pred_fine._gru`` and
``_pred_fine._fc_out._fc_out``), refuses unknown and missing keys, and undoes
E2E-Spot's interleaved GSM output order so the model reproduces the logits of
the network the checkpoint was made from. What it cannot prove: that
E2E-Spot's own code computes exactly that network; that was checked outside
the repository against the E2E-Spot sources (see docs/model.md).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from _model_helpers import one_thread, open_gates, tiny_inputs  # noqa: F401  (one_thread: autouse fixture)
from uglspot.cli import main
from uglspot.engine.model_folder import load_model, load_model_metadata
from uglspot.model import create_model
from uglspot.model.shift import GateShift, ShiftThenConv

K, CLIP = 3, 4
OURS_TO_THEIRS = (("backbone.net.", "_features."), (".conv1.inner.", ".conv1.net."),
                  (".conv1.shift.gate.", ".conv1.gsm.conv3D."), (".conv1.shift.bn.", ".conv1.gsm.bn."),
                  ("head.gru.", "_pred_fine._gru."), ("head.fc.", "_pred_fine._fc_out._fc_out."))


def e2e_channel_order(fold: int) -> torch.Tensor:
    """E2E-Spot writes each gated half (2 × F/4 channels, natural order) back
    transposed: output channel 2j+i holds natural channel i·F/4 + j."""
    half = torch.arange(fold // 2).view(2, fold // 4).t().reshape(-1)
    return torch.cat([half, half + fold // 2])


class InterleavedGSM(nn.Module):
    """A GSM whose output fold channels come out in E2E-Spot's order."""

    def __init__(self, gsm: GateShift):
        super().__init__()
        self.gsm = gsm
        self.order = torch.cat([e2e_channel_order(gsm.fold), torch.arange(gsm.fold, gsm.channels)])

    def forward(self, x):
        return self.gsm(x)[:, self.order]


def e2e_network(arch: str = "rny002", shift: str = "gsm", seed: int = 0):
    """A tiny random network with E2E-Spot's semantics (``reference``), the
    same network in uglspot's channel order (``source``), and its state dict
    in E2E-Spot's layout."""
    torch.manual_seed(seed)
    source = create_model(f"e2e_{arch}", K, clip_len=CLIP, shift=shift)
    open_gates(source, std=0.2)
    with torch.no_grad():
        for name, t in source.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                t.normal_(0, 0.1)
    reference = copy.deepcopy(source).eval()
    state = {}
    for name, tensor in source.state_dict().items():
        theirs = name
        for ours, their in OURS_TO_THEIRS:
            theirs = theirs.replace(ours, their)
        state[theirs] = tensor.clone()
    for path, module in reference.named_modules():
        if isinstance(module, ShiftThenConv) and isinstance(module.shift, GateShift):
            fold = module.shift.fold
            conv = module.inner.conv
            with torch.no_grad():
                conv.weight[:, :fold] = conv.weight[:, e2e_channel_order(fold)].clone()
            module.shift = InterleavedGSM(module.shift)
            key = "_features." + path.removeprefix("backbone.net.") + ".net.conv.weight"
            state[key] = conv.weight.detach().clone()
    return source.eval(), reference, state


@pytest.fixture(scope="module")
def gsm_network():
    return e2e_network()


def write_checkpoint(directory, state, arch="rny002", shift="gsm", **config_changes):
    """E2E-Spot's files: checkpoint_NNN.pt (a plain state dict) and config.json."""
    ckpt = directory / "checkpoint_012.pt"
    torch.save(state, ckpt)
    config = {"batch_size": 8, "clip_len": CLIP, "crop_dim": 224, "dataset": "finediving",
              "feature_arch": f"{arch}_{shift}" if shift != "none" else arch, "gpu_parallel": False,
              "modality": "rgb", "num_classes": K, "temporal_arch": "gru", "mixup": True}
    config.update(config_changes)
    (directory / "config.json").write_text(json.dumps(config))
    return ckpt


def test_checkpoint_layout_uses_e2e_spot_key_names(gsm_network):
    _, _, state = gsm_network
    for key in ["_features.stem.conv.weight", "_features.s1.b1.conv1.net.conv.weight",
                "_features.s1.b1.conv1.net.bn.running_var", "_features.s1.b1.conv1.gsm.conv3D.weight",
                "_features.s1.b1.conv1.gsm.bn.num_batches_tracked", "_features.s4.b7.se.fc2.bias",
                "_pred_fine._gru.weight_ih_l0_reverse", "_pred_fine._fc_out._fc_out.weight"]:
        assert key in state, key
    assert state["_features.s1.b1.conv1.gsm.conv3D.weight"].shape == (2, 4, 3, 3, 3)  # fold 8 of 32, 2 groups
    assert state["_pred_fine._fc_out._fc_out.weight"].shape == (K + 1, 2 * 368)


@pytest.mark.parametrize("arch, shift", [("rny002", "gsm"), ("rny002", "none")])
def test_import_reproduces_the_logits(tmp_path, gsm_network, arch, shift):
    source, reference, state = gsm_network if shift == "gsm" else e2e_network(arch, shift)
    ckpt = write_checkpoint(tmp_path, state, arch, shift)
    assert main(["import-e2e-spot", str(ckpt), "--out", str(tmp_path / "model")]) == 0
    model = load_model(tmp_path / "model").eval()
    assert model.config.name == f"e2e_{arch}" and model.config.shift == shift
    assert model.config.clip_len == CLIP and model.config.num_classes == K
    assert load_model_metadata(tmp_path / "model")["dataset"] == "finediving"
    x, _ = tiny_inputs()
    with torch.no_grad():
        want = reference(x).logits
        got = model(x).logits
        short = model(x[:, :3]).logits
        want_short = reference(x[:, :3]).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short, want_short, atol=1e-5, rtol=1e-5)
    if shift == "gsm":  # the interleaving matters: E2E-Spot's conv weights as they are give other logits
        naive = copy.deepcopy(model)
        convs = {k: v for k, v in state.items() if ".conv1.net.conv." in k}
        naive.load_state_dict({k.replace("_features.", "backbone.net.").replace(".net.conv.", ".inner.conv."): v
                               for k, v in convs.items()}, strict=False)
        with torch.no_grad():
            assert (naive(x).logits - want).abs().max() > 1e-3


def _import_into(tmp_path, state, variant: str):
    """``uglspot import-e2e-spot --into variant`` of ``state`` with classes a, b, c; the model folder."""
    ckpt = write_checkpoint(tmp_path, state)
    classes = tmp_path / "class.txt"
    classes.write_text("a\nb\nc\n")
    out = tmp_path / variant
    assert main(["import-e2e-spot", str(ckpt), "--into", variant, "--classes", str(classes),
                 "--out", str(out)]) == 0
    return out


def test_import_into_ugl_starts_global_branch_and_head(tmp_path, gsm_network):
    source, _, state = gsm_network
    model = load_model(_import_into(tmp_path, state, "ugl_rny002")).eval()
    assert model.config.name == "ugl_rny002" and model.config.use_entities
    assert load_model_metadata(tmp_path / "ugl_rny002")["classes"] == ["a", "b", "c"]
    ours = model.state_dict()
    for name, tensor in source.state_dict().items():  # E2E-Spot's head becomes the global head
        assert torch.equal(ours[name.replace("head.", "global_head.") if name.startswith("head.") else name],
                           tensor), name
    assert any(k.startswith("aam.") for k in ours)
    with torch.no_grad():  # so the global head alone gives E2E-Spot's logits
        x = torch.randn(1, model.config.clip_len, 3, 64, 64)
        torch.testing.assert_close(model.global_head(model.backbone(x)[0]), source.eval()(x).logits)


def test_import_into_the_paper_variant_starts_its_only_head(tmp_path, gsm_network):
    source, _, state = gsm_network
    ours = load_model(_import_into(tmp_path, state, "ugl_paper_rny002")).state_dict()
    for name, tensor in source.state_dict().items():
        assert torch.equal(ours[name], tensor), name


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"_features.s5.b1.conv1.weight": torch.zeros(1)}), "1 key\\(s\\) that a e2e_rny002"),
    (lambda s: s.pop("_features.s2.b1.conv1.gsm.bn.running_mean"), "1 weight\\(s\\) missing"),
    (lambda s: s.update({"_pred_fine._fc_out._fc_out.bias": torch.zeros(9)}), "has shape \\(9,\\)"),
    (lambda s: s.update({"hook": print}), "refuses"),
])
def test_import_refuses_keys_that_do_not_fit(tmp_path, capsys, gsm_network, change, message):
    state = dict(gsm_network[2])
    change(state)
    ckpt = write_checkpoint(tmp_path, state)
    assert main(["import-e2e-spot", str(ckpt), "--out", str(tmp_path / "m")]) == 1
    assert message.replace("\\", "") in capsys.readouterr().err.replace("\\", "")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("config_changes, args, message", [
    ({"modality": "flow"}, [], "RGB frames only"),
    ({"feature_arch": "rny002_tsm"}, [], "TSM shifts in place"),
    ({"feature_arch": "rn50_gsm"}, [], "not supported"),
    ({"temporal_arch": "mstcn"}, [], "only E2E-Spot's 1-layer"),
    ({}, ["--into", "ugl_rny008"], "use --into ugl_rny002"),
])
def test_import_refuses_models_it_cannot_reproduce(tmp_path, capsys, gsm_network, config_changes, args, message):
    ckpt = write_checkpoint(tmp_path, gsm_network[2], **config_changes)
    assert main(["import-e2e-spot", str(ckpt), "--out", str(tmp_path / "m"), *args]) == 1
    assert message in capsys.readouterr().err


def test_import_never_overwrites_without_asking(tmp_path, capsys, gsm_network):
    ckpt = write_checkpoint(tmp_path, gsm_network[2])
    out = tmp_path / "m"
    assert main(["import-e2e-spot", str(ckpt), "--out", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["import-e2e-spot", str(ckpt), "--out", str(out)]) == 1
    assert "already holds a model" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["import-e2e-spot", str(ckpt), "--out", str(out), "--overwrite"]) == 0
