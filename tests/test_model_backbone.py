"""The timm backbone: output contract and ImageNet weights without internet."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.errors import UserError
from uglspot.model.backbone import Backbone


@pytest.mark.parametrize("name, dim", [("regnety_002", 368), ("resnet18", 512)])
def test_backbone_returns_pooled_feature_and_map(name, dim):
    backbone = Backbone(name, "gsm", clip_len=3).eval()
    frames = torch.randn(2, 3, 3, 64, 96)
    with torch.no_grad():
        f_env, fmap = backbone(frames)
    assert f_env.shape == (2, 3, dim) and backbone.feat_dim == dim
    assert fmap.shape == (6, backbone.map_dim, 2, 3) and backbone.map_stride == 32
    torch.testing.assert_close(f_env.reshape(6, dim), fmap.mean(dim=(2, 3)))


def test_pretrained_without_internet_says_what_to_do(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(UserError) as info:
        Backbone("regnety_002", "gsm", clip_len=4, pretrained=True)
    message = str(info.value)
    assert "ImageNet weights for backbone regnety_002 could not be loaded" in message
    assert "pretrained_file" in message and "pretrained: false" in message and "\n" not in message


def test_pretrained_file_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    released = timm.create_model("regnety_002", pretrained=False)  # with its ImageNet classifier
    save_file(released.state_dict(), str(tmp_path / "model.safetensors"))
    backbone = Backbone("regnety_002", "none", clip_len=4, pretrained=True,
                        pretrained_file=str(tmp_path / "model.safetensors"))
    assert torch.equal(backbone.net.s2.b1.conv2.conv.weight, released.s2.b1.conv2.conv.weight)
    with pytest.raises(UserError, match="file not found"):
        Backbone("regnety_002", "none", clip_len=4, pretrained=True, pretrained_file=str(tmp_path / "nope"))
