"""R-MAC: the region grid against its definition, pooling against a loop, whitening init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from capbench.models.rmac import RMAC, regional_max_pool, rmac_regions

torch.set_num_threads(1)


def _loop_rmac_regions(regions, fmap):
    """Direct reference: every channel's max over each region's cells, element by element."""
    B, C, _, _ = fmap.shape
    out = torch.empty(B, len(regions), C)
    for b in range(B):
        for r, (y0, x0, h, w) in enumerate(regions):
            for c in range(C):
                best = -math.inf
                for y in range(y0, y0 + h):
                    for x in range(x0, x0 + w):
                        best = max(best, float(fmap[b, c, y, x]))
                out[b, r, c] = best
    return out


@pytest.mark.parametrize("hw", [(4, 4), (5, 7), (9, 6), (18, 24)])
def test_region_grid_counts_coverage_and_overlap(hw):
    h, w = hw
    regions = rmac_regions(h, w, levels=3)
    short, long = min(hw), max(hw)
    # m: extra regions on the long side (0 for square maps), read off level 1
    m = len(rmac_regions(h, w, levels=1)) - 1
    assert (m == 0) == (h == w)
    expected = [lvl * (lvl + m) for lvl in (1, 2, 3)]
    assert len(regions) == sum(expected)
    start = 0
    for lvl, count in zip((1, 2, 3), expected):
        level = regions[start : start + count]
        start += count
        side = math.floor(2 * short / (lvl + 1))
        assert all(rh == side and rw == side for _, _, rh, rw in level)  # squares of 2 min/(l+1)
        assert all(y >= 0 and y + rh <= h and x >= 0 and x + rw <= w for y, x, rh, rw in level)
        covered = torch.zeros(h, w, dtype=torch.bool)
        for y, x, rh, rw in level:
            covered[y : y + rh, x : x + rw] = True
        assert covered.all(), f"level {lvl} leaves cells uncovered"
    if h != w:  # level-1 overlap along the long side is the one tuned to ~40%
        lvl1 = regions[: 1 + m]
        starts = sorted({x for _, x, _, _ in lvl1} if w > h else {y for y, _, _, _ in lvl1})
        step = (long - short) / m
        overlap = (short - step) / short
        assert starts[0] == 0 and starts[-1] == long - short
        # no other m brings the overlap closer to 0.4
        for other in range(1, 7):
            assert abs(overlap - 0.4) <= abs((short - (long - short) / other) / short - 0.4) + 1e-9


def test_regional_max_pool_matches_loop():
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(2, 3, 5, 7, generator=g)
    regions = rmac_regions(5, 7, levels=3)
    torch.testing.assert_close(regional_max_pool(fmap, regions), _loop_rmac_regions(regions, fmap))


def test_rmac_descriptor_matches_direct_pipeline():
    g = torch.Generator().manual_seed(1)
    trunk = nn.Conv2d(3, 6, 3, stride=4, padding=1)
    head = RMAC(6, 4, levels=2, scales=(1.0, 1 / math.sqrt(2)))
    with torch.no_grad():
        head.whiten.weight.copy_(torch.randn(4, 6, generator=g))
        head.whiten.bias.copy_(torch.randn(4, generator=g))
    images = torch.randn(2, 3, 40, 56, generator=g)
    got = head(trunk, images)
    # direct: loop-pooled regions of each scale, L2, whiten, L2, sum over all, L2
    total = torch.zeros(2, 4)
    for s in (1.0, 1 / math.sqrt(2)):
        x = (
            images
            if s == 1.0
            else F.interpolate(
                images,
                size=(round(40 * s), round(56 * s)),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        )
        fmap = trunk(x).detach()
        regs = _loop_rmac_regions(rmac_regions(fmap.shape[2], fmap.shape[3], 2), fmap)
        regs = regs / regs.norm(dim=-1, keepdim=True)
        white = regs @ head.whiten.weight.detach().T + head.whiten.bias.detach()
        total += (white / white.norm(dim=-1, keepdim=True)).sum(1)
    torch.testing.assert_close(
        got.detach(), total / total.norm(dim=-1, keepdim=True), atol=1e-5, rtol=1e-4
    )
    assert got.shape == (2, 4)
    got.sum().backward()  # end-to-end trainable
    assert trunk.weight.grad is not None and head.whiten.weight.grad is not None


def test_init_whitening_decorrelates():
    g = torch.Generator().manual_seed(2)
    mix = torch.randn(8, 8, generator=g)
    feats = torch.randn(4000, 8, generator=g) @ mix + 3.0  # correlated, offset
    head = RMAC(8, 8)
    head.init_whitening(feats)
    white = head.whiten(feats).detach().double()
    torch.testing.assert_close(white.mean(0), torch.zeros(8, dtype=torch.double), atol=1e-6, rtol=0)
    cov = torch.cov(white.T)
    torch.testing.assert_close(cov, torch.eye(8, dtype=torch.double), atol=1e-4, rtol=0)
    # reduced dimension keeps the top principal directions, still decorrelated
    head4 = RMAC(8, 4)
    head4.init_whitening(feats)
    torch.testing.assert_close(
        torch.cov(head4.whiten(feats).detach().double().T),
        torch.eye(4, dtype=torch.double),
        atol=1e-4,
        rtol=0,
    )


def test_head_stays_fp32_inside_a_bf16_autocast_region():
    """The trunk may run in bf16 (CPU or GPU autocast), the whitening and aggregation may not:
    descriptors a triplet margin of 0.1 compares must keep fp32's resolution (README)."""
    g = torch.Generator().manual_seed(3)
    head = RMAC(16, 16)
    head.init_whitening(torch.randn(2000, 16, generator=g) @ torch.randn(16, 16, generator=g))
    regional = F.normalize(torch.randn(4, 9, 16, generator=g), dim=-1)
    ref = head.aggregate(regional)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = head.aggregate(regional.to(torch.bfloat16))  # as a bf16 trunk's pooled map arrives
        plain = F.normalize(F.normalize(head.whiten(regional), dim=-1).sum(1), dim=-1)
    assert got.dtype == torch.float32 and plain.dtype == torch.bfloat16  # autocast was active
    # the only error left is the bf16 rounding of the input; the head adds none of its own
    bf16_input = head.aggregate(regional.to(torch.bfloat16).float())
    torch.testing.assert_close(got, bf16_input, atol=1e-6, rtol=0)
    assert (got - ref).abs().max() < (plain.float() - ref).abs().max()
