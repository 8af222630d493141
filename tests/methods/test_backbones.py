"""Backbones: named factories, local weight loading round trip, clear errors."""

from __future__ import annotations

import pytest
import torch

from capbench.models.backbones import BackboneWeightsError, create_backbone

torch.set_num_threads(1)


@pytest.mark.parametrize("name,channels", [("timm::resnet18", 512), ("torchvision::resnet18", 512)])
def test_trunk_returns_last_conv_map(name, channels):
    trunk, c = create_backbone(name)
    assert c == channels
    assert trunk(torch.zeros(1, 3, 64, 96)).shape == (1, channels, 2, 3)


def test_state_dict_and_lightning_ckpt_round_trip(tmp_path):
    src, _ = create_backbone("timm::resnet18")
    x = torch.randn(1, 3, 64, 64)
    # a plain state dict with an ImageNet-style classifier head (dropped on load)
    sd = dict(src.state_dict())
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(10, 512), torch.zeros(10)
    torch.save(sd, tmp_path / "plain.pt")
    dst, _ = create_backbone("timm::resnet18", tmp_path / "plain.pt")
    torch.testing.assert_close(dst.eval()(x), src.eval()(x))
    # a Lightning checkpoint holding the trunk under a prefix
    ckpt = {
        "state_dict": {f"backbone.trunk.{k}": v for k, v in src.state_dict().items()},
        "epoch": 3,
    }
    torch.save(ckpt, tmp_path / "lit.ckpt")
    dst2, _ = create_backbone("timm::resnet18", tmp_path / "lit.ckpt", channels_last=True)
    torch.testing.assert_close(dst2.eval()(x), src.eval()(x), atol=1e-5, rtol=1e-5)


def test_bad_weight_files_name_the_file_and_keys(tmp_path):
    with pytest.raises(BackboneWeightsError, match="not found"):
        create_backbone("timm::resnet18", tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneWeightsError, match=r"junk\.pt: not a torch checkpoint") as err:
        create_backbone("timm::resnet18", tmp_path / "junk.pt")
    # torch's own advice (retry with weights_only=False, i.e. run the file's code) is not passed on
    assert "weights_only" not in str(err.value) and "state_dict()" in str(err.value)
    sd = dict(create_backbone("timm::resnet18")[0].state_dict())
    del sd["layer4.1.bn2.weight"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(BackboneWeightsError) as err:
        create_backbone("timm::resnet18", tmp_path / "partial.pt")
    msg = str(err.value)
    assert "partial.pt" in msg and "layer4.1.bn2.weight" in msg and "extra.weight" in msg
    with pytest.raises(KeyError, match="torchvision::resnet101"):
        create_backbone("resnet18")
