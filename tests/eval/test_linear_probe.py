"""Linear probes: same numbers as a direct scikit-learn fit, difficult excluded, settings recorded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from capbench.eval.linear_probe import logistic_probe, voc07_svm_probe
from capbench.eval.metrics import voc07_map


def _split(rng, n_train, n_test, n_cls=3, dim=12):
    """Train and test drawn from one distribution: multi-hot labels, features = sum of centres."""
    n = n_train + n_test
    labels = (rng.random((n, n_cls)) < 0.4).astype(int)
    labels[np.arange(n), rng.integers(0, n_cls, n)] = 1
    centres = rng.normal(size=(n_cls, dim)) * 2
    feats = labels @ centres + rng.normal(size=(n, dim))
    return feats[:n_train], labels[:n_train], feats[n_train:], labels[n_train:]


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_svm_probe_equals_direct_fit_with_single_c():
    rng = np.random.default_rng(0)
    xtr, ytr, xte, yte = _split(rng, 120, 60)
    out = voc07_svm_probe(xtr, ytr, xte, yte, c_grid=[0.5], seed=3)
    scores = np.stack(
        [LinearSVC(C=0.5, random_state=3, max_iter=5000).fit(_unit(xtr), ytr[:, c]).decision_function(_unit(xte))
         for c in range(3)], axis=1)  # fmt: skip
    want = voc07_map(scores, yte)
    assert out["map"] == pytest.approx(want["map"]) and out["map_11pt"] == pytest.approx(
        want["map_11pt"]
    )
    assert out["chosen_c"] == [0.5, 0.5, 0.5] and out["seed"] == 3 and out["c_grid"] == [0.5]


def test_difficult_training_rows_are_ignored():
    rng = np.random.default_rng(1)
    xtr, ytr, xte, yte = _split(rng, 100, 50)
    difficult = np.zeros_like(ytr, dtype=bool)
    difficult[:10, 0] = True
    noisy = ytr.copy()
    noisy[:10, 0] = 1 - noisy[:10, 0]  # garbage labels on the difficult rows
    a = voc07_svm_probe(xtr, ytr, xte, yte, train_difficult=difficult, c_grid=[1.0])
    b = voc07_svm_probe(xtr, noisy, xte, yte, train_difficult=difficult, c_grid=[1.0])
    assert a["ap_per_class"] == b["ap_per_class"]


def test_cross_validation_picks_from_the_grid_and_records_it():
    rng = np.random.default_rng(2)
    xtr, ytr, xte, yte = _split(rng, 90, 40)
    out = voc07_svm_probe(xtr, ytr, xte, yte, c_grid=[0.01, 1.0, 10.0], n_folds=3, seed=0)
    assert all(c in (0.01, 1.0, 10.0) for c in out["chosen_c"])
    for c, cv in zip(out["chosen_c"], out["cv_ap"]):
        assert cv[c] == max(cv.values())
    assert out["map"] > 100 * yte.mean() + 10  # chance AP is the positive rate


def test_svm_probe_is_the_same_with_parallel_classes():
    rng = np.random.default_rng(4)
    xtr, ytr, xte, yte = _split(rng, 90, 40)
    one = voc07_svm_probe(xtr, ytr, xte, yte, c_grid=[0.1, 1.0], n_jobs=1)
    two = voc07_svm_probe(xtr, ytr, xte, yte, c_grid=[0.1, 1.0], n_jobs=2)
    assert one["ap_per_class"] == two["ap_per_class"]
    assert one["chosen_c"] == two["chosen_c"] and one["cv_ap"] == two["cv_ap"]


def test_logistic_probe_equals_direct_fit():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 10)) * 3
    ytr, yte = rng.integers(0, 4, 200), rng.integers(0, 4, 80)
    xtr = centres[ytr] + rng.normal(size=(200, 10))
    xte = centres[yte] + rng.normal(size=(80, 10))
    out = logistic_probe(xtr, ytr, xte, yte, c_grid=[2.0], seed=1)
    pred = (
        LogisticRegression(C=2.0, max_iter=1000, random_state=1)
        .fit(_unit(xtr), ytr)
        .predict(_unit(xte))
    )
    assert out["top1"] == pytest.approx(100 * np.mean(pred == yte))
    assert out["chosen_c"] == 2.0 and out["seed"] == 1
    grid = logistic_probe(xtr, ytr, xte, yte, c_grid=[0.01, 1.0], seed=1)
    assert grid["chosen_c"] in (0.01, 1.0) and set(grid["cv_accuracy"]) == {0.01, 1.0}


def test_softmax_probe_separates_clusters_and_not_noise():
    from capbench.eval.linear_probe import softmax_probe

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 16))
    y, yt = rng.integers(0, 5, 400), rng.integers(0, 5, 200)
    x = centers[y] + 0.5 * rng.normal(size=(400, 16))
    xt = centers[yt] + 0.5 * rng.normal(size=(200, 16))
    good = softmax_probe(x, y, xt, yt, 5, epochs=20, batch_size=64)
    noise = softmax_probe(rng.normal(size=(400, 16)), y, rng.normal(size=(200, 16)), yt, 5,
                          epochs=20, batch_size=64)  # fmt: skip
    assert good["top1"] > 95.0 and good["top5"] == 100.0  # 5 classes: top-5 is everything
    assert noise["top1"] < 40.0  # chance is 20
    again = softmax_probe(x, y, xt, yt, 5, epochs=20, batch_size=64)
    assert again == good  # seeded: the same number twice
    with pytest.raises(ValueError, match="n_classes"):
        softmax_probe(x, y, xt, yt, 3)
