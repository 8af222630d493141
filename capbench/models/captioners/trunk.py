"""A convolutional trunk at a chosen output stride, for dense (per-region) models.

DenseCap's regions are pooled from VGG-16 conv5_3, a stride-16 map; a ResNet's last stage is
stride 32, which on small images leaves too few cells to place regions in. ``stride=16`` loads
the whole trunk (so its weights file is checked strictly, as everywhere) and then drops the last
ResNet stage (``layer4``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from capbench.models.backbones import create_backbone


def dense_trunk(
    name: str, stride: int = 16, weights: str | Path | None = None
) -> tuple[nn.Module, int]:
    """``(trunk, channels)`` of ``name`` cut to ``stride`` (16 or 32), weights from a local file."""
    if stride not in (16, 32):
        raise ValueError(f"trunk stride must be 16 or 32, got {stride}")
    trunk, channels = create_backbone(name, weights)
    if stride == 32:
        return trunk, channels
    if not hasattr(trunk, "layer4"):
        raise ValueError(f"{name}: stride 16 needs a ResNet-style trunk with a layer4")
    if isinstance(trunk, nn.Sequential):
        del trunk.layer4
    else:
        trunk.layer4 = nn.Identity()
    was_training = trunk.training
    with torch.no_grad():
        channels = int(trunk.eval()(torch.zeros(1, 3, 64, 64)).shape[1])
    trunk.train(was_training)
    return trunk, channels
