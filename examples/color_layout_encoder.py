"""A bring-your-own encoder for ``capbench suite``: no learning, only colour and layout.

``capbench suite --encoder examples.color_layout_encoder:build --name color_layout`` scores it on
every suite protocol. It is the classical hand-made baseline a learned encoder should beat: the
mean colour of each cell of a 4 x 4 grid plus a coarse colour histogram of the whole image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ColorLayout(nn.Module):
    """Images ``(B, 3, H, W)`` (ImageNet-normalised) -> ``(B, 3*g*g + 3*bins)`` features."""

    image_size = 64  # the suite feeds images at this longest side

    def __init__(self, grid: int = 4, bins: int = 8) -> None:
        super().__init__()
        self.grid = grid
        self.bins = bins

    def forward(self, images: Tensor) -> Tensor:
        layout = nn.functional.adaptive_avg_pool2d(images, self.grid).flatten(1)
        # per-channel histograms over [-2.5, 2.5] (normalised pixel values), soft-binned
        centers = torch.linspace(-2.5, 2.5, self.bins, device=images.device)
        width = centers[1] - centers[0]
        px = images.flatten(2).unsqueeze(-1)  # (B, 3, HW, 1)
        weights = torch.relu(1 - (px - centers).abs() / width)
        hist = weights.mean(2).flatten(1)  # (B, 3 * bins)
        return torch.cat([layout, hist], dim=1)


def build() -> nn.Module:
    return ColorLayout()
