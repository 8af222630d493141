"""The Malali / VSE losses against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from capbench.losses import (
    adaptive_margin_update,
    bidirectional_hinge,
    center_loss,
    pairwise_l2,
)

# row i = image i, column j = caption j; the diagonal pairs match
SCORES = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.6, 0.7], [0.0, 0.2, 0.4]])


def test_vse0_sums_every_violation_both_ways():
    # margin 0.2. Image queries (rows): row 0: 0.2+0.8-0.9=0.1, 0.2+0.1-0.9<0 -> 0.1;
    # row 1: 0.2+0.5-0.6=0.1, 0.2+0.7-0.6=0.3 -> 0.4; row 2: 0.2+0.0-0.4<0, 0.2+0.2-0.4=0 -> 0.
    # Caption queries (columns): col 0: 0.2+0.5-0.9<0, 0.2+0-0.9<0 -> 0; col 1: 0.2+0.8-0.6=0.4,
    # 0.2+0.2-0.6<0 -> 0.4; col 2: 0.2+0.1-0.4<0, 0.2+0.7-0.4=0.5 -> 0.5. Total 1.4.
    loss = bidirectional_hinge(SCORES, SCORES, 0.2, "sum")
    assert loss.item() == pytest.approx(1.4)


def test_vsepp_keeps_only_the_hardest_negative():
    # rows: max(0.1, 0) + max(0.1, 0.3) + max(0, 0) = 0.4; columns: 0 + 0.4 + 0.5 = 0.9
    loss = bidirectional_hinge(SCORES, SCORES, 0.2, "hardest")
    assert loss.item() == pytest.approx(1.3)


def test_the_two_directions_read_their_own_matrix():
    """Quantized search: image queries use one matrix, caption queries the other."""
    # rows from SCORES: 0.1 + 0.4 + 0 = 0.5; columns of an all-zero matrix: 2 x 0.2 each
    loss = bidirectional_hinge(SCORES, torch.zeros(3, 3), 0.2)
    assert loss.item() == pytest.approx(0.5 + 3 * 2 * 0.2)


def test_bad_negatives_and_shapes_are_errors():
    with pytest.raises(ValueError, match="negatives"):
        bidirectional_hinge(SCORES, SCORES, 0.2, "semi-hard")
    with pytest.raises(ValueError, match="square"):
        bidirectional_hinge(SCORES[:2], SCORES[:2], 0.2)


def test_pairwise_l2_is_the_euclidean_distance():
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(pairwise_l2(a, b), torch.cdist(a, b))


def test_center_loss_by_hand():
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    centers = torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    # 0.5 * (|(1,0)-(0,0)|^2 + |(0,2)-(0,1)|^2) / 2 = 0.5 * (1 + 1) / 2
    assert center_loss(emb, centers, torch.tensor([0, 1])).item() == pytest.approx(0.5)


def test_adaptive_margin_rule():
    m = torch.tensor(0.2)
    d_pos, d_neg = torch.tensor([0.5, 0.7]), torch.tensor([1.0, 1.4, 1.2])
    # gap = 1.2 - 0.6 = 0.6, target = 0.5 * 0.6 = 0.3; m <- 0.9 * 0.2 + 0.1 * 0.3 = 0.21
    new = adaptive_margin_update(m, d_pos, d_neg, 0.1, 0.5, 0.05, 1.0)
    assert new.item() == pytest.approx(0.21)
    # a collapsed embedding (no gap) asks for the lower bound, not a negative margin
    low = adaptive_margin_update(m, d_neg, d_pos, 1.0, 0.5, 0.05, 1.0)
    assert low.item() == pytest.approx(0.05)
