"""VOC07 classification mAP: standard AP against scikit-learn, 11-point AP against a loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from capbench.eval.metrics import voc07_map


def test_hand_computed_with_tie_and_difficult():
    # image 3 is difficult -> dropped. Scores .9 .8 .8 .1 with positives 1 0 1 1 (3 positives).
    # operating points (tie .8 is one point): (R 1/3, P 1), (R 2/3, P 2/3), (R 1, P 3/4)
    # AP = 1/3 * (1 + 2/3 + 3/4) = 0.80556
    # 11-point: t = 0..0.3 -> 1; t = 0.4..0.6 -> 3/4; t = 0.7..1 -> 3/4 => (4 + 7 * 0.75)/11
    scores = np.array([[0.9], [0.8], [0.8], [0.3], [0.1]])
    labels = np.array([[1], [0], [1], [0], [1]])
    difficult = np.array([[0], [0], [0], [1], [0]], dtype=bool)
    out = voc07_map(scores, labels, difficult)
    assert out["map"] == pytest.approx(100 * (1 + 2 / 3 + 3 / 4) / 3)
    assert out["map_11pt"] == pytest.approx(100 * (4 + 7 * 0.75) / 11)


def test_random_with_ties_matches_references(ref):
    rng = np.random.default_rng(0)
    n, c = 60, 5
    scores = rng.integers(0, 6, size=(n, c)).astype(np.float64)
    labels = (rng.random((n, c)) < 0.3).astype(int)
    labels[0] = 1
    difficult = rng.random((n, c)) < 0.1
    difficult[0] = False
    out = voc07_map(scores, labels, difficult)
    std, pt11 = [], []
    for k in range(c):
        keep = ~difficult[:, k]
        std.append(100 * average_precision_score(labels[keep, k], scores[keep, k]))
        pt11.append(ref.voc_ap_11pt(scores[keep, k].tolist(), labels[keep, k].tolist()))
    np.testing.assert_allclose(out["ap_per_class"], std, rtol=1e-12)
    np.testing.assert_allclose(out["ap_11pt_per_class"], pt11, rtol=1e-12)
    assert out["map"] == pytest.approx(np.mean(std))
    assert out["map_11pt"] == pytest.approx(np.mean(pt11))


def test_class_without_positives_is_left_out():
    scores = np.array([[0.9, 0.1], [0.2, 0.3]])
    labels = np.array([[1, 0], [0, 0]])
    out = voc07_map(scores, labels)
    assert out["map"] == pytest.approx(100.0)
    assert np.isnan(out["ap_per_class"][1])


def test_nan_score_is_an_error_not_ranked_last():
    scores = np.array([[0.9, 0.1], [np.nan, 0.2], [0.3, 0.4]])
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"scores\[1, 0\] is NaN"):
        voc07_map(scores, labels)


def test_tied_infinite_scores_are_one_operating_point():
    # two images at +inf, one positive: one point (R 1, P 1/2), whichever comes first -> AP 50
    for labels in ([1, 0], [0, 1]):
        out = voc07_map(np.array([[np.inf], [np.inf]]), np.array(labels)[:, None])
        assert out["map"] == pytest.approx(50.0)
        assert out["map"] == pytest.approx(100 * average_precision_score(labels, [1.0, 1.0]))


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        voc07_map(np.zeros((0, 3)), np.zeros((0, 3)))


def test_interpolated_ap_of_goyal_et_al_by_hand():
    """Goyal et al. 2019 (fair_self_supervision_benchmark, tools/svm/svm_helper.py calculate_ap)
    report the interpolated all-points AP: precision is first made non-increasing in recall.
    Scores .9 .8 .7 .6 .5 with positives 1 0 0 1 1 (no ties, so their order-by-order points are
    ours): P = 1, 1/2, 1/3, 1/2, 3/5 at R = 1/3, 1/3, 1/3, 2/3, 1.
    non-interpolated: 1/3 * (1 + 1/2 + 3/5) = 0.7
    interpolated:     1/3 * (1 + 3/5 + 3/5) = 0.7333 (the envelope lifts P at R = 2/3 to 3/5)
    11-point:         t = 0..0.3 -> 1, t = 0.4..1 -> 3/5 => (4 + 7 * 0.6) / 11"""
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    labels = np.array([[1], [0], [0], [1], [1]])
    out = voc07_map(scores, labels)
    assert out["map"] == pytest.approx(100 * (1 + 1 / 2 + 3 / 5) / 3)
    assert out["map_interp"] == pytest.approx(100 * (1 + 3 / 5 + 3 / 5) / 3)
    assert out["map_11pt"] == pytest.approx(100 * (4 + 7 * 0.6) / 11)
    assert out["ap_interp_per_class"] == [pytest.approx(out["map_interp"])]


def test_interpolated_ap_never_below_the_plain_one():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(50, 6)).round(1)  # ties on purpose
    labels = rng.integers(0, 2, size=(50, 6))
    out = voc07_map(scores, labels)
    for plain, interp in zip(out["ap_per_class"], out["ap_interp_per_class"]):
        assert interp >= plain - 1e-12
