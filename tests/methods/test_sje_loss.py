"""Reed et al.'s structured joint embedding loss against values worked out by hand, and against
a loop written the way ``JointEmbeddingLoss`` in train_sje_hybrid.lua is written."""

from __future__ import annotations

import pytest
import torch

from capbench.losses import (
    da_sje_loss,
    ds_sje_loss,
    sje_compatibility,
    sje_hinge,
    sje_image_term,
    sje_text_term,
)

# Three classes, one image and one caption each (row i = class i).
V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
T = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
# F(v_i, t_j) = v_i . t_j:
#   [[1, 1, 0],
#    [0, 1, 2],
#    [1, 2, 2]]


def test_compatibility_is_the_dot_product_matrix():
    want = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]])
    torch.testing.assert_close(sje_compatibility(V, T), want)


def test_image_and_text_terms_by_hand():
    # Image term: image i against every wrong caption j, max(0, 1 + F_ij - F_ii), summed:
    #   i=0: j=1 -> 1+1-1 = 1, j=2 -> 1+0-1 = 0         -> 1
    #   i=1: j=0 -> 1+0-1 = 0, j=2 -> 1+2-1 = 2         -> 2
    #   i=2: j=0 -> 1+1-2 = 0, j=1 -> 1+2-2 = 1         -> 1
    #   total 4, divided by batch x classes = 9
    torch.testing.assert_close(sje_image_term(V, T), torch.tensor(4 / 9))
    # Text term: caption j against every wrong image i, max(0, 1 + F_ij - F_jj):
    #   j=0: i=1 -> 1+0-1 = 0, i=2 -> 1+1-1 = 1         -> 1
    #   j=1: i=0 -> 1+1-1 = 1, i=2 -> 1+2-1 = 2         -> 3
    #   j=2: i=0 -> 1+0-2 < 0 -> 0, i=1 -> 1+2-2 = 1    -> 1
    #   total 5, over 9
    torch.testing.assert_close(sje_text_term(V, T), torch.tensor(5 / 9))
    torch.testing.assert_close(ds_sje_loss(V, T), torch.tensor(1.0))  # DS-SJE: both terms
    torch.testing.assert_close(da_sje_loss(V, T), torch.tensor(4 / 9))  # DA-SJE: image term
    # with margin 0 only image 1 / caption 2 still violates, by F_12 - F_11 = 2 - 1 = 1
    torch.testing.assert_close(sje_image_term(V, T, margin=0.0), torch.tensor(1 / 9))


def test_image_term_gradients_are_the_lua_ones():
    """JointEmbeddingLoss accumulates, for each violation (i, j): img_grads[i] += t_j - t_y,
    txt_grads[j] += v_i, txt_grads[y] -= v_i, all divided by batch x classes. The violations
    above are (0,1), (1,2), (2,1)."""
    v, t = V.clone().requires_grad_(), T.clone().requires_grad_()
    sje_image_term(v, t).backward()
    torch.testing.assert_close(v.grad, torch.tensor([[0.0, 1.0], [-1.0, 1.0], [1.0, -1.0]]) / 9)
    torch.testing.assert_close(t.grad, torch.tensor([[-1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]]) / 9)


def _lua_loop(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> float:
    loss = 0.0
    n, k = scores.shape
    for i in range(n):
        label_score = float(scores[i, labels[i]])
        for j in range(k):
            if j != int(labels[i]):
                thresh = float(scores[i, j]) - label_score + margin
                if thresh > 0:
                    loss += thresh
    return loss / (n * k)


def test_hinge_matches_the_lua_loop_for_any_labels():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 7, generator=gen)
    labels = torch.tensor([6, 0, 3, 3, 1])
    for margin in (1.0, 0.3):
        got = float(sje_hinge(scores, labels, margin))
        assert got == pytest.approx(_lua_loop(scores, labels, margin), rel=1e-6)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="one image and one caption per class"):
        ds_sje_loss(V, T[:2])
    with pytest.raises(ValueError, match=r"scores \(N, K\) and labels \(N,\)"):
        sje_hinge(torch.zeros(3, 3), torch.zeros(2, dtype=torch.long))
