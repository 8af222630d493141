"""R-MAC: regional maximum activations of convolutions (Tolias, Sicre & Jégou, ICLR 2016),
trained end to end as in Gordo et al. (IJCV 2017) and used by Gordo & Larlus (CVPR 2017).

Pipeline per image: the trunk's last conv map at each input scale -> max-pool over every region
of the Tolias grid -> L2 per region -> PCA-whitening (a learnable ``nn.Linear`` with bias,
initialised from data) -> L2 per region -> sum over regions and scales -> L2.

The region grid, from the published definition: at level ``l = 1..L`` regions are squares of side
``2 * min(H, W) / (l + 1)`` (level 1 is the largest square that fits); along the short side ``l``
regions are spread uniformly, along the long side ``l + m``, where ``m`` is chosen once so that
consecutive level-1 regions along the long side overlap as close to 40% as possible (``m = 0``
for a square map; Tolias et al. write the count as ``l x (l + m' - 1)`` with ``m' = m + 1``). Starts are uniform from 0 to ``side - width``, so every level
covers the whole map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Region = tuple[int, int, int, int]  # (y0, x0, height, width) on the feature map

TARGET_OVERLAP = 0.4


def _extra_long_side_regions(short: int, long: int, max_extra: int = 6) -> int:
    """``m``: how many more level-1 regions the long side gets, for ~40% overlap."""
    if long == short:
        return 0
    best_m, best_err = 1, math.inf
    for m in range(1, max_extra + 1):
        step = (long - short) / m  # m + 1 regions of width ``short`` spread over ``long``
        overlap = (short - step) / short
        err = abs(overlap - TARGET_OVERLAP)
        if err < best_err:
            best_m, best_err = m, err
    return best_m


def _starts(length: int, width: int, count: int) -> list[int]:
    if count == 1:
        return [(length - width) // 2]
    step = (length - width) / (count - 1)
    return [round(i * step) for i in range(count)]


def rmac_regions(height: int, width: int, levels: int = 3) -> list[Region]:
    """The Tolias et al. R-MAC regions of an ``height x width`` feature map, level by level."""
    if height < 1 or width < 1 or levels < 1:
        raise ValueError(f"need a positive map size and levels, got {height}x{width}, L={levels}")
    short, long = min(height, width), max(height, width)
    m = _extra_long_side_regions(short, long)
    regions: list[Region] = []
    for level in range(1, levels + 1):
        side = max(1, math.floor(2 * short / (level + 1)))
        n_short, n_long = level, level + m
        if height <= width:
            ys, xs = _starts(height, side, n_short), _starts(width, side, n_long)
        else:
            ys, xs = _starts(height, side, n_long), _starts(width, side, n_short)
        regions.extend((y, x, side, side) for y in ys for x in xs)
    return regions


def regional_max_pool(fmap: Tensor, regions: Sequence[Region]) -> Tensor:
    """``(B, C, h, w)`` -> ``(B, R, C)``: the max of each channel inside each region."""
    pooled = [fmap[:, :, y : y + h, x : x + w].amax(dim=(2, 3)) for y, x, h, w in regions]
    return torch.stack(pooled, dim=1)


class RMAC(nn.Module):
    """R-MAC head with a learnable PCA-whitening; the trunk is passed in so it can be shared."""

    def __init__(
        self,
        in_channels: int,
        out_dim: int | None = None,
        levels: int = 3,
        scales: Sequence[float] = (1.0, 1 / math.sqrt(2)),
    ) -> None:
        super().__init__()
        self.levels = levels
        self.scales = tuple(float(s) for s in scales)
        self.whiten = nn.Linear(in_channels, out_dim or in_channels, bias=True)
        with torch.no_grad():  # identity start: a usable R-MAC before init_whitening is called
            self.whiten.weight.zero_()
            self.whiten.weight[:, : min(in_channels, self.whiten.out_features)].fill_diagonal_(1.0)
            self.whiten.bias.zero_()

    @property
    def out_dim(self) -> int:
        return self.whiten.out_features

    def region_descriptors(self, fmap: Tensor) -> Tensor:
        """``(B, C, h, w)`` -> L2-normalised regional max-pools ``(B, R, C)``, before whitening."""
        regions = rmac_regions(fmap.shape[-2], fmap.shape[-1], self.levels)
        return F.normalize(regional_max_pool(fmap.float(), regions), dim=-1)

    def aggregate(self, regional: Tensor) -> Tensor:
        """Whiten -> L2 -> sum over regions -> L2, for ``(B, R, C)`` regional descriptors.

        Always fp32, also inside a bf16 autocast region: the PCA-whitening scales small
        eigen-directions up by lambda^-1/2, and the triplet losses compare dot products of the
        result within a margin of 0.1, differences that bfloat16's 8-bit mantissa (steps of
        ~0.004 near 1) blurs. The trunk's convolutions are where bf16 saves time; this head
        costs little in fp32 (benchmarks/gordo2017/README.md, "Training under bf16-mixed")."""
        with torch.autocast(regional.device.type, enabled=False):
            w = F.normalize(self.whiten(regional.float()), dim=-1)
            return F.normalize(w.sum(dim=1), dim=-1)

    def from_conv(self, fmap: Tensor) -> Tensor:
        """Descriptor of a single conv map (one scale): the Grad-CAM head."""
        return self.aggregate(self.region_descriptors(fmap))

    def multiscale_regions(self, trunk: nn.Module, images: Tensor) -> Tensor:
        """Regional descriptors of ``images`` at every scale, concatenated along regions."""
        parts = []
        for s in self.scales:
            x = images
            if s != 1.0:
                size = (max(1, round(images.shape[-2] * s)), max(1, round(images.shape[-1] * s)))
                x = F.interpolate(
                    images, size=size, mode="bilinear", align_corners=False, antialias=True
                )
            parts.append(self.region_descriptors(trunk(x)))
        return torch.cat(parts, dim=1)

    def forward(self, trunk: nn.Module, images: Tensor) -> Tensor:
        return self.aggregate(self.multiscale_regions(trunk, images))

    @torch.no_grad()
    def init_whitening(self, features: Tensor, eps: float = 1e-6) -> None:
        """Set the whitening to PCA-whitening learned on ``features`` ``(N, C)`` (regional
        descriptors): ``W = diag(lambda^-1/2) U^T``, ``b = -W mu`` for the top ``out_dim``
        eigenvectors ``U`` of the covariance. ``eps`` keeps tiny eigenvalues finite."""
        x = features.detach().reshape(-1, features.shape[-1])
        n = x.shape[0]
        if n < 2:
            raise ValueError("whitening needs at least 2 feature vectors")
        # float64 statistics in chunks: the paper profile has ~200k x 2048 regional descriptors
        mu = torch.zeros(x.shape[1], dtype=torch.float64)
        for chunk in x.split(16384):
            mu += chunk.double().sum(0).cpu()
        mu /= n
        cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        for chunk in x.split(16384):
            xc = chunk.double().cpu() - mu
            cov += xc.T @ xc
        cov /= n - 1
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(evals, descending=True)[: self.out_dim]
        evals, evecs = evals[order].clamp_min(0), evecs[:, order]
        proj = (evecs / torch.sqrt(evals + eps)).T  # (D, C)
        self.whiten.weight.copy_(proj.to(self.whiten.weight.dtype))
        self.whiten.bias.copy_((-proj @ mu).to(self.whiten.bias.dtype))
