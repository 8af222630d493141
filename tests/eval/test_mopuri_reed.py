"""Mopuri graded nDCG@K and Reed zero-shot top-1 / AP@50."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from capbench.eval.metrics import ap_at_50, class_text_embeddings, graded_ndcg_at_k, zero_shot_top1


def test_graded_ndcg_hand_computed():
    # self = col 0, col 2 has no ground truth: references are cols 1 (rel 1), 3 (rel 2), 4 (rel 0)
    # ranked 1, 3, 4 -> gains 2^1-1 = 1, 2^2-1 = 3, 0; ideal gains 3, 1, 0
    # nDCG@1 = 1/3; nDCG@2 = (1 + 3/log2 3)/(3 + 1/log2 3); K=5 > 3 references: same as K=3
    sim = np.array([[1.0, 0.9, 0.8, 0.7, 0.6]])
    rel = np.array([[3.0, 1.0, np.nan, 2.0, 0.0]])
    got = graded_ndcg_at_k(sim, rel, [1, 2, 5], exclude_self=[0])
    l3 = math.log2(3)
    assert got[1] == pytest.approx(1 / 3)
    assert got[2] == pytest.approx((1 + 3 / l3) / (3 + 1 / l3))
    assert got[5] == pytest.approx(got[2])


def test_graded_ndcg_matches_sklearn_with_exponential_gain():
    # sklearn uses linear gain: pass 2^rel - 1 as its "relevance"; ties broken by index for it
    rng = np.random.default_rng(0)
    n_q, n_db = 6, 30
    sim = rng.integers(0, 5, size=(n_q, n_db)).astype(np.float64)
    rel = rng.integers(0, 4, size=(n_q, n_db)).astype(np.float64)
    rel[rng.random((n_q, n_db)) < 0.3] = np.nan
    rel[:, 0] = 3.0
    cols = np.arange(1, n_q + 1)
    ks = [1, 5, 10, 20, 100]
    got = graded_ndcg_at_k(sim, rel, ks, exclude_self=cols)
    for k in ks:
        vals = []
        for q in range(n_q):
            keep = np.isfinite(rel[q]) & (np.arange(n_db) != cols[q])
            score = sim[q] - 1e-6 * np.arange(n_db)
            vals.append(ndcg_score((2 ** rel[q, keep] - 1)[None], score[keep][None], k=k))
        assert got[k] == pytest.approx(np.mean(vals), rel=1e-10)


def test_class_text_embeddings_is_the_mean_of_captions():
    emb = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0]])
    cls = torch.tensor([0, 0, 1, 0])
    # class 0: mean of rows 0, 1, 3 = (6/3, 4/3); class 1: row 2
    want = torch.tensor([[2.0, 4 / 3], [0.0, 4.0]])
    torch.testing.assert_close(class_text_embeddings(emb, cls), want)
    with pytest.raises(ValueError, match="no caption"):
        class_text_embeddings(emb, cls, n_classes=3)


def test_zero_shot_top1_and_ap_hand_computed():
    cls = np.array([[1.0, 0.0], [0.0, 1.0]])
    img = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.2, 0.9]])
    labels = np.array([0, 1, 1, 1])
    # predictions 0, 0 (tie -> lower class), 1, 1: class 0 acc 1/1, class 1 acc 2/3 -> 5/6
    assert zero_shot_top1(img, cls, labels) == pytest.approx(100 * 5 / 6)
    # k=2: class 0 query top images 0, 1 (labels 0, 1) -> 1/2; class 1: images 2, 3 -> 2/2
    assert ap_at_50(img, cls, labels, k=2) == pytest.approx(75.0)


def test_random_with_ties_matches_loops():
    rng = np.random.default_rng(1)
    img = rng.integers(-1, 2, size=(80, 4)).astype(np.float64)
    cls = rng.integers(-1, 2, size=(6, 4)).astype(np.float64)
    labels = rng.integers(0, 6, size=80)
    scores = img @ cls.T
    pred = [min(range(6), key=lambda c, s=s: (-s[c], c)) for s in scores]
    per_class = [np.mean([pred[i] == c for i in range(80) if labels[i] == c]) for c in range(6)]
    assert zero_shot_top1(img, cls, labels) == pytest.approx(100 * np.mean(per_class))
    precisions = []
    for c in range(6):
        order = sorted(range(80), key=lambda i, c=c: (-scores[i, c], i))[:50]
        precisions.append(np.mean([labels[i] == c for i in order]))
    assert ap_at_50(img, cls, labels) == pytest.approx(100 * np.mean(precisions))


def test_graded_ndcg_ranks_a_minus_inf_reference_among_references_only(ref):
    """The issue's case: the reference at sim -inf is ranked second of the two references, not
    behind the masked non-reference at column 0. Ranked 3 (gain 1) then 1 (gain 7):
    nDCG@2 = (1 + 7/log2 3) / (7 + 1/log2 3) = 0.7098, not 0.131."""
    sim = np.array([[0.0, -np.inf, 1.0, 2.0]])
    rel = np.array([[np.nan, 3.0, np.nan, 1.0]])
    l3 = math.log2(3)
    got = graded_ndcg_at_k(sim, rel, [2])[2]
    assert got == pytest.approx((1 + 7 / l3) / (7 + 1 / l3)) and round(got, 3) == 0.710
    assert got == pytest.approx(ref.graded_ndcg(sim.tolist(), rel.tolist(), 2))


def test_graded_ndcg_with_infinite_scores_matches_loop(ref):
    rng = np.random.default_rng(3)
    n_q, n_db = 8, 25
    sim = rng.integers(0, 4, size=(n_q, n_db)).astype(np.float64)
    sim[rng.random((n_q, n_db)) < 0.25] = -np.inf
    sim[rng.random((n_q, n_db)) < 0.05] = np.inf
    rel = rng.integers(0, 4, size=(n_q, n_db)).astype(np.float64)
    rel[rng.random((n_q, n_db)) < 0.4] = np.nan
    cols = np.arange(n_q)
    ks = [1, 3, 10, 25]
    got = graded_ndcg_at_k(sim, rel, ks, exclude_self=cols)
    for k in ks:
        assert got[k] == pytest.approx(ref.graded_ndcg(sim.tolist(), rel.tolist(), k, cols))


@pytest.mark.parametrize("grade", [np.inf, -np.inf, -1.0])
def test_graded_ndcg_rejects_an_infinite_or_negative_grade(grade):
    """+inf used to turn a judged reference into 'not judged' (only nan means that)."""
    rel = np.array([[np.nan, 3.0, grade, 1.0]])
    with pytest.raises(ValueError, match=r"rel\[0, 2\]"):
        graded_ndcg_at_k(np.array([[0.0, 1.0, 2.0, 3.0]]), rel, [2])


def test_graded_ndcg_rejects_a_nan_score_of_a_judged_reference():
    rel = np.array([[np.nan, 3.0, np.nan, 1.0]])
    assert graded_ndcg_at_k(np.array([[np.nan, 1.0, np.nan, 0.0]]), rel, [2])[2] == 1.0
    with pytest.raises(ValueError, match=r"sim\[0, 3\] is NaN for a judged reference"):
        graded_ndcg_at_k(np.array([[0.0, 1.0, 2.0, np.nan]]), rel, [2])


def test_zero_shot_label_without_a_class_row_is_an_error():
    """Label 2 with two class rows can never be predicted: it was silently counted wrong."""
    cls = np.array([[1.0, 0.0], [0.0, 1.0]])
    img = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    for metric in (zero_shot_top1, ap_at_50):
        with pytest.raises(ValueError, match=r"labels\[2\] = 2 has no class row: expected 0..1"):
            metric(img, cls, np.array([0, 1, 2]))
        with pytest.raises(ValueError, match=r"labels\[0\] = -1 has no class row"):
            metric(img, cls, np.array([-1, 1, 1]))


def test_empty_inputs_are_named_not_a_torch_error():
    cls = np.zeros((2, 3))
    for metric in (zero_shot_top1, ap_at_50):
        with pytest.raises(ValueError, match="no images"):
            metric(np.zeros((0, 3)), cls, np.zeros(0, dtype=int))
        with pytest.raises(ValueError, match="no class embeddings"):
            metric(np.zeros((2, 3)), np.zeros((0, 3)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="no captions"):
        class_text_embeddings(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="no queries"):
        graded_ndcg_at_k(np.zeros((0, 4)), np.zeros((0, 4)), [1])
