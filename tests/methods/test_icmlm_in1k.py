"""ICMLM's ImageNet-1k probe row path on the ImageNet fixture (the paper profile's only data it
needs beyond COCO and VOC): reader -> pooled layer features -> softmax probe -> in1k_top1."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from capbench.data.fixtures import write_fixture
from capbench.methods.icmlm import rows
from capbench.methods.icmlm.config import row_config
from capbench.methods.protocol import RowContext
from capbench.models.backbones import create_backbone


def test_in1k_probe_runs_on_the_imagenet_layout(tmp_path):
    root = write_fixture("imagenet", tmp_path / "imagenet")
    cfg = row_config({
        "model": {"backbone": "torchvision::resnet18", "image_size": 32},
        "in1k": {"root": str(root), "epochs": 3, "batch_size": 4, "max_train_per_class": 1},
    })  # fmt: skip
    torch.manual_seed(0)
    trunk, _ = create_backbone("torchvision::resnet18", None)
    model = SimpleNamespace(trunk=trunk, device=torch.device("cpu"))
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="paper", data_root=tmp_path)
    metrics, extra = rows._in1k(cfg, ctx, model)
    assert set(metrics) == {"in1k_top1", "in1k_top5"}
    assert 0.0 <= metrics["in1k_top1"] <= metrics["in1k_top5"] == pytest.approx(100.0)  # 4 classes
    info = extra["in1k"]
    assert info["classes"] == 4 and info["train_images"] == 4  # one per class (the knob)
    assert info["layer"] == "layer4" and info["epochs"] == 3


def test_in1k_probe_names_the_data_card_when_imagenet_is_missing(tmp_path):
    cfg = row_config({"in1k": {"root": "imagenet"}})
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="paper", data_root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"imagenet\.md"):
        rows._in1k(cfg, ctx, SimpleNamespace(trunk=None, device="cpu"))
