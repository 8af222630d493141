"""Losses of the capbench methods, as functions of embeddings (no model code here).

Gordo & Larlus 2017 (semantic retrieval): one hinge on dot products, used three ways --
L_v (Eq. 1, image query / image positive / image negative), L_t1 (Eq. 2, image query / text
pos-neg) and L_t2 (Eq. 3, text query / image pos-neg); WSABIE is Eq. 2 alone. The paper does not
state the margin m; capbench defaults to 0.1 (the value of the authors' earlier triplet work on
instance retrieval; unverified for this paper) and keeps it a config value.

Other methods add their losses here (center loss, SJE, graded contrastive, ...).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

DEFAULT_MARGIN = 0.1


def triplet_margin_dot(
    q: Tensor, pos: Tensor, neg: Tensor, margin: float = DEFAULT_MARGIN, reduction: str = "mean"
) -> Tensor:
    """``0.5 * max(0, m - q.pos + q.neg)`` per row of ``(B, D)`` embeddings; mean by default."""
    losses = 0.5 * F.relu(margin - (q * pos).sum(-1) + (q * neg).sum(-1))
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"unknown reduction {reduction!r}")


def gordo_visual_loss(
    phi_q: Tensor, phi_p: Tensor, phi_n: Tensor, margin: float = DEFAULT_MARGIN
) -> Tensor:
    """L_v (Eq. 1): image query, image positive, image negative."""
    return triplet_margin_dot(phi_q, phi_p, phi_n, margin)


def gordo_text_losses(
    phi_q: Tensor,
    phi_p: Tensor,
    phi_n: Tensor,
    theta_q: Tensor,
    theta_p: Tensor,
    theta_n: Tensor,
    margin: float = DEFAULT_MARGIN,
) -> tuple[Tensor, Tensor]:
    """(L_t1, L_t2) (Eqs. 2, 3): image query against texts; text query against images."""
    l_t1 = triplet_margin_dot(phi_q, theta_p, theta_n, margin)
    l_t2 = triplet_margin_dot(theta_q, phi_p, phi_n, margin)
    return l_t1, l_t2


def wsabie_loss(
    phi_q: Tensor, theta_p: Tensor, theta_n: Tensor, margin: float = DEFAULT_MARGIN
) -> Tensor:
    """The WSABIE-like baseline of Table 2: Eq. 2 alone (image query ranks texts)."""
    return triplet_margin_dot(phi_q, theta_p, theta_n, margin)
