"""NDCG@R / PCC@R / AUC (Gordo & Larlus) against hand-computed values, loops and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from capbench.eval.metrics import (
    curve_auc,
    default_r_grid,
    ndcg_curve,
    pcc_curve,
    semantic_curves,
    topk_deterministic,
)


def test_hand_computed_curves_with_a_tie():
    # ranking by pred: col0 (0.9), then the 0.5 tie in index order col1, col2, then col3
    # rel in rank order: 1, 0, 2, 0; ideal order 2, 1, 0, 0
    pred = np.array([[0.9, 0.5, 0.5, 0.1]])
    rel = np.array([[1.0, 0.0, 2.0, 0.0]])
    l3 = math.log2(3)
    # NDCG@1 = 1/2; NDCG@2 = 1/(2 + 1/log2 3); NDCG@3 = (1 + 2/log2 4)/(2 + 1/log2 3)
    expected = [0.5, 1 / (2 + 1 / l3), 2 / (2 + 1 / l3)]
    np.testing.assert_allclose(ndcg_curve(pred, rel, [1, 2, 3]), expected, rtol=1e-12)
    # PCC@1 undefined; PCC@2 of (0.9,0.5) vs (1,0) = 1; PCC@3: dy = (0,-1,1), dx = (.27,-.13,-.13)
    # so the covariance is 0
    pcc = pcc_curve(pred, rel, [1, 2, 3])
    assert math.isnan(pcc[0])
    np.testing.assert_allclose(pcc[1:], [1.0, 0.0], atol=1e-12)


def test_hand_computed_self_exclusion():
    # query is column 0: remaining ranking col1, col2, col3 with rel 0, 2, 0; ideal 2, 0, 0
    pred = np.array([[0.9, 0.5, 0.5, 0.1]])
    rel = np.array([[1.0, 0.0, 2.0, 0.0]])
    got = ndcg_curve(pred, rel, [1, 2], exclude_self=[0])
    np.testing.assert_allclose(got, [0.0, (2 / math.log2(3)) / 2], rtol=1e-12)


def test_curve_auc_hand_computed():
    # trapezoid over R = 1, 2, 3: (1 + .5)/2 + (.5 + 0)/2 = 1, divided by R span 2 -> 50
    assert curve_auc([1.0, 0.5, 0.0], [1, 2, 3]) == pytest.approx(50.0)
    # nan dropped: (1 + 0)/2 * 2 / 2 = 0.5 -> 50
    assert curve_auc([1.0, np.nan, 0.0], [1, 2, 3]) == pytest.approx(50.0)
    assert curve_auc([0.3], [5]) == pytest.approx(30.0)
    assert math.isnan(curve_auc([np.nan, np.nan], [1, 2]))


def _random_case(rng, n_q=7, n_db=25):
    pred = rng.integers(0, 5, size=(n_q, n_db)).astype(np.float64)  # many ties
    rel = rng.integers(0, 3, size=(n_q, n_db)).astype(np.float64) * (rng.random((n_q, n_db)) < 0.4)
    rel[0] = 0.0  # a query without relevant items: undefined NDCG, skipped
    self_cols = rng.integers(-1, n_db, size=n_q)
    return pred, rel, self_cols


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_with_ties_matches_loop_reference(ref, seed):
    rng = np.random.default_rng(seed)
    pred, rel, cols = _random_case(rng)
    rs = [1, 2, 3, 5, 8, 13, 24]
    got = semantic_curves(pred, rel, rs, exclude_self=cols, chunk_size=3)
    want_ndcg, want_pcc = ref.gordo_curves(pred, rel, rs, cols)
    np.testing.assert_allclose(got["ndcg"], want_ndcg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["pcc"], want_pcc, rtol=1e-8, atol=1e-10)


def test_ndcg_matches_sklearn_ndcg_score():
    # sklearn: linear gain, 1/log2(i+1) discount, ideal DCG of the whole row at k: Gordo's NDCG.
    # Its tie handling differs, so ties in pred are broken by index in the scores passed to it.
    rng = np.random.default_rng(5)
    n_q, n_db = 6, 30
    pred = rng.integers(0, 4, size=(n_q, n_db)).astype(np.float64)
    rel = rng.random((n_q, n_db)) * (rng.random((n_q, n_db)) < 0.5)
    rel[:, 7] += 0.1  # every query has relevant items (sklearn scores undefined rows 0)
    cols = np.arange(n_q)
    rs = [1, 4, 10, 29]
    got = ndcg_curve(pred, rel, rs, exclude_self=cols)
    for t, r in enumerate(rs):
        vals = []
        for q in range(n_q):
            keep = np.arange(n_db) != cols[q]
            score = pred[q] - 1e-6 * np.arange(n_db)  # lower index first within a tie
            vals.append(ndcg_score(rel[q, keep][None], score[keep][None], k=r))
        assert got[t] == pytest.approx(np.mean(vals), rel=1e-10)


def test_pcc_matches_scipy_on_continuous_scores(ref):
    rng = np.random.default_rng(9)
    pred, rel = rng.random((5, 40)), rng.random((5, 40))
    rs = [2, 3, 10, 39]
    got = pcc_curve(pred, rel, rs, exclude_self=np.arange(5))
    np.testing.assert_allclose(got, ref.gordo_curves(pred, rel, rs, np.arange(5))[1], rtol=1e-9)


def test_text_oracle_scores_100():
    rng = np.random.default_rng(3)
    rel = np.round(rng.random((20, 60)), 1)  # ties in the relevance itself
    rs = default_r_grid(60)
    out = semantic_curves(rel, rel, rs, exclude_self=np.arange(20))
    assert np.all(out["ndcg"] == 1.0)
    assert curve_auc(out["ndcg"], rs) == 100.0
    assert curve_auc(out["pcc"], rs) == pytest.approx(100.0, abs=1e-9)


def test_random_ranking_is_far_below_oracle():
    rng = np.random.default_rng(4)
    rel = rng.random((50, 200)) ** 4
    rs = default_r_grid(200)
    out = semantic_curves(rng.random((50, 200)), rel, rs, exclude_self=np.arange(50))
    assert curve_auc(out["ndcg"], rs) < 60.0
    assert abs(curve_auc(out["pcc"], rs)) < 10.0


def test_default_r_grid():
    grid = default_r_grid(10_000)
    assert grid[0] == 1 and grid[-1] == 1000 and len(grid) == 100
    assert np.all(np.diff(grid) > 0)
    np.testing.assert_array_equal(default_r_grid(6), [1, 2, 3, 4, 5])


def test_topk_deterministic_breaks_ties_by_index():
    import torch

    x = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    vals, idx = topk_deterministic(x, 2)
    assert idx.tolist() == [[1, 2], [0, 1]]
    assert vals.tolist() == [[3.0, 3.0], [0.0, 0.0]]


def test_errors_are_clear():
    pred, rel = np.zeros((2, 4)), np.ones((2, 4))
    with pytest.raises(ValueError, match="exceeds"):
        ndcg_curve(pred, rel, [1, 4], exclude_self=[0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_curve(pred, -rel, [1])
    with pytest.raises(ValueError, match="NaN"):
        ndcg_curve(np.full((2, 4), np.nan), rel, [1])
    with pytest.raises(ValueError, match="increasing"):
        ndcg_curve(pred, rel, [2, 1])


@pytest.mark.parametrize("levels", [3, 1000, None])
def test_topk_deterministic_matches_sorted(ref, levels):
    import torch

    rng = np.random.default_rng(levels or 0)
    x = rng.random((12, 50)) if levels is None else rng.integers(0, levels, (12, 50)).astype(float)
    vals, idx = topk_deterministic(torch.from_numpy(x), 9)
    for row in range(12):
        want = ref.ranking(list(x[row]))[:9]
        assert idx[row].tolist() == want
        assert vals[row].tolist() == [x[row, j] for j in want]
