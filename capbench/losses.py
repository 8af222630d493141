"""Losses of the capbench methods, as functions of embeddings (no model code here).

Gordo & Larlus 2017 (semantic retrieval): one hinge on dot products, used three ways --
L_v (Eq. 1, image query / image positive / image negative), L_t1 (Eq. 2, image query / text
pos-neg) and L_t2 (Eq. 3, text query / image pos-neg); WSABIE is Eq. 2 alone. The paper does not
state the margin m; capbench defaults to 0.1 (the value of the authors' earlier triplet work on
instance retrieval; unverified for this paper) and keeps it a config value.

Reed et al. 2016 (fine-grained zero-shot): the structured joint embedding hinge, DS-SJE (image
and text terms) and DA-SJE (image term), on the compatibility F(v, t) = theta(v)^T phi(t).

Mopuri et al. 2017 (caption fusion): the graded ("non-binary relevance") contrastive loss of
the official code's ``loss4``, on the distance of the siamese outputs.

Other methods add their losses here (center loss, ...).
"""

from __future__ import annotations

import torch
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


# --------------------------------------------------------------------------- Reed et al. 2016

SJE_MARGIN = 1.0  # the 0-1 loss Delta of a wrong class: "+ 1" in train_sje_hybrid.lua line 134


def sje_compatibility(image: Tensor, text: Tensor) -> Tensor:
    """F(v, t) = theta(v)^T phi(t) for every pair: ``(B, D) x (C, D) -> (B, C)``."""
    return image @ text.T


def sje_hinge(scores: Tensor, labels: Tensor, margin: float = SJE_MARGIN) -> Tensor:
    """The structured joint embedding hinge as ``JointEmbeddingLoss`` computes it
    (``reedscot/cvpr2016`` ``train_sje_hybrid.lua`` lines 117-155).

    ``scores (N, K)``: row i scores item i against K candidates, ``labels[i]`` its true one.
    Every wrong candidate j adds ``max(0, margin + s_ij - s_i,label)`` -- a *sum* over the
    violating classes, not the max of the structured-SVM form in the paper -- and the total is
    divided by N x K (``denom = batch_size * num_class``, line 150), wrong classes or not.
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"sje_hinge: scores (N, K) and labels (N,) expected, got {tuple(scores.shape)} and "
            f"{tuple(labels.shape)}"
        )
    true = scores.gather(1, labels.view(-1, 1))
    violation = F.relu(margin + scores - true)
    wrong = torch.ones_like(scores, dtype=torch.bool).scatter_(1, labels.view(-1, 1), False)
    return (violation * wrong).sum() / scores.numel()


def _diagonal_labels(image: Tensor, text: Tensor) -> Tensor:
    if image.shape != text.shape:
        raise ValueError(
            "SJE terms take one image and one caption per class, in matching rows: got "
            f"{tuple(image.shape)} images and {tuple(text.shape)} texts"
        )
    return torch.arange(image.shape[0], device=image.device)


def sje_image_term(image: Tensor, text: Tensor, margin: float = SJE_MARGIN) -> Tensor:
    """Each image ranks the batch's captions (row i of ``image`` and ``text`` are one class, as
    Reed's loader builds batches: ``lab[i] = i``, MultimodalMinibatchLoaderCaption.lua line 81).
    This is ``JointEmbeddingLoss(fea_txt, fea_img, labels)``, line 208."""
    return sje_hinge(sje_compatibility(image, text), _diagonal_labels(image, text), margin)


def sje_text_term(image: Tensor, text: Tensor, margin: float = SJE_MARGIN) -> Tensor:
    """Each caption ranks the batch's images: the symmetric call
    ``JointEmbeddingLoss(fea_img, fea_txt, labels)``, line 213."""
    return sje_hinge(sje_compatibility(text, image), _diagonal_labels(image, text), margin)


def ds_sje_loss(image: Tensor, text: Tensor, margin: float = SJE_MARGIN) -> Tensor:
    """DS-SJE (``-symmetric 1``, lines 212-217): image term + text term."""
    return sje_image_term(image, text, margin) + sje_text_term(image, text, margin)


def da_sje_loss(image: Tensor, text: Tensor, margin: float = SJE_MARGIN) -> Tensor:
    """DA-SJE (``-symmetric 0``): the image term alone, as in Akata et al.'s SJE."""
    return sje_image_term(image, text, margin)


# --------------------------------------------------------------------------- Malali & Keller 2022
# and its VSE baselines (Faghri et al. 2018). Scores are similarities: larger = closer. Malali's
# abstract approximates semantic similarity by L2 distances, so its score is -||a - b||;
# VSE0/VSE++ (fartashf/vsepp, ``--measure cosine``) score by the dot product.

NEGATIVES = ("sum", "hardest")


def pairwise_l2(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances ``(A, D) x (B, D) -> (A, B)``; ``eps`` keeps the gradient finite at 0."""
    sq = (a * a).sum(-1, keepdim=True) - 2.0 * a @ b.T + (b * b).sum(-1).unsqueeze(0)
    return sq.clamp_min(eps).sqrt()


def bidirectional_hinge(
    scores_i2t: Tensor,
    scores_t2i: Tensor,
    margin: float | Tensor,
    negatives: str = "sum",
) -> Tensor:
    """The VSE ranking hinge over a batch whose row i (image) and column i (caption) match.

    ``scores_i2t[i, j]`` scores image i against caption j (image queries rank captions);
    ``scores_t2i[i, j]`` the same pair as caption j's query ranks images (the two differ only
    when one side is quantized). Each query's violations ``max(0, m + s_neg - s_pos)`` are
    summed over the batch's negatives (``"sum"``: VSE0) or only the hardest one counts
    (``"hardest"``: VSE++, ``--max_violation``); both directions, summed over the batch as in
    fartashf/vsepp ``ContrastiveLoss``.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    if scores_i2t.shape != scores_t2i.shape or scores_i2t.shape[0] != scores_i2t.shape[1]:
        raise ValueError(
            f"square score matrices of one shape expected, got {tuple(scores_i2t.shape)} and "
            f"{tuple(scores_t2i.shape)}"
        )
    n = scores_i2t.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=scores_i2t.device)
    pos_i = scores_i2t.diagonal().unsqueeze(1)  # image i's own caption, per row
    pos_t = scores_t2i.diagonal().unsqueeze(0)  # caption j's own image, per column
    cost_caption = F.relu(margin + scores_i2t - pos_i).masked_fill(eye, 0.0)
    cost_image = F.relu(margin + scores_t2i - pos_t).masked_fill(eye, 0.0)
    if negatives == "hardest":
        return cost_caption.max(dim=1).values.sum() + cost_image.max(dim=0).values.sum()
    return cost_caption.sum() + cost_image.sum()


def center_loss(embeddings: Tensor, centers: Tensor, labels: Tensor) -> Tensor:
    """Center loss (Wen et al. 2016): ``0.5 * ||e_i - c_{y_i}||^2`` averaged over the rows."""
    diff = embeddings - centers.index_select(0, labels)
    return 0.5 * (diff * diff).sum(-1).mean()


def adaptive_margin_update(
    margin: Tensor,
    d_pos: Tensor,
    d_neg: Tensor,
    momentum: float,
    gap_fraction: float,
    low: float,
    high: float,
) -> Tensor:
    """Capbench's rule for the adaptive margin (our reading of Malali & Keller's abstract, which
    says only that the margin "is refined during the training phase"): the margin follows an
    exponential moving average of ``gap_fraction`` times the observed gap between the mean
    distance to negatives and to positives, clipped to ``[low, high]``:

        m <- (1 - momentum) * m + momentum * clip(gap_fraction * (mean d_neg - mean d_pos))

    So the hinge asks for a separation proportional to what the embedding already achieves."""
    gap = (d_neg.detach().mean() - d_pos.detach().mean()) * gap_fraction
    target = gap.clamp(min=low, max=high)
    return (1.0 - momentum) * margin + momentum * target


def graded_contrastive_loss(distance: Tensor, grade: Tensor, margin: float = 1.0) -> Tensor:
    """Mopuri et al.'s loss4, ``mean(y^2 * d + max(0, 1 - y) * max(0, m - d^2))``, for pair
    distances ``d`` and graded relevance ``y`` in {0..3}: a relevant pair is pulled in with a
    weight that grows with its grade, a zero-grade pair pushed out to ``d^2 >= m``."""
    y = grade.to(distance.dtype)
    pull = y.square() * distance
    push = F.relu(1.0 - y) * F.relu(margin - distance.square())
    return (pull + push).mean()


def siamese_distance(a: Tensor, b: Tensor, eps: float = 1e-7) -> Tensor:
    """Euclidean distance between the L2-normalised rows of ``a`` and ``b`` (Keras'
    ``sqrt(max(sum((x - y)^2), eps))`` of the code, so the gradient stays finite at 0)."""
    diff = F.normalize(a, dim=-1) - F.normalize(b, dim=-1)
    return diff.square().sum(-1).clamp(min=eps).sqrt()
