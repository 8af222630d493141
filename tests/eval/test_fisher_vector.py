"""Fisher vectors (Gordo & Larlus Table 1, "word2vec + FV"): exact on hand-built sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from capbench.eval.fisher_vector import FisherVectors


def _improved(v: np.ndarray) -> np.ndarray:
    v = np.sign(v) * np.sqrt(np.abs(v))
    return v / np.linalg.norm(v)


def test_one_component_similarity_of_a_hand_built_pair():
    """K = 1, 1-d words: the GMM is the training mean and std, every posterior is 1, so the FV is
    (mean z, mean(z^2 - 1) / sqrt 2) of each set; the similarity follows by hand."""
    train = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])  # mean 2, variance 2
    fv = FisherVectors(components=1).fit(train)
    mu, sigma = 2.0, math.sqrt(2.0)
    a, b = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0], [4.0]])

    def by_hand(x: np.ndarray) -> np.ndarray:
        z = (x[:, 0] - mu) / sigma
        return _improved(np.array([z.mean(), (z**2 - 1).mean() / math.sqrt(2)]))

    assert np.allclose(fv.encode(a), by_hand(a), atol=1e-6)
    assert fv.encode(a) @ fv.encode(b) == pytest.approx(by_hand(a) @ by_hand(b), abs=1e-6)
    # a = (-1.5/s, -0.5/s): G_mu < 0; b's mean z > 0: opposite in the mean part
    assert fv.encode(a)[0] < 0 < fv.encode(b)[0]
    assert fv.encode(a) @ fv.encode(a) == pytest.approx(1.0)


def test_matches_the_formula_with_several_components():
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(-3, 1, (200, 2)), rng.normal(3, 0.5, (200, 2))])
    fv = FisherVectors(components=2, seed=0).fit(train)
    g = fv.gmm
    x = rng.normal(0, 2, (7, 2))
    dens = np.stack(
        [g.weights_[k] * multivariate_normal(g.means_[k], np.diag(g.covariances_[k])).pdf(x)
         for k in range(2)], axis=1,
    )  # fmt: skip
    gamma = dens / dens.sum(1, keepdims=True)
    parts_mu, parts_sigma = [], []
    for k in range(2):
        z = (x - g.means_[k]) / np.sqrt(g.covariances_[k])
        parts_mu.append((gamma[:, k : k + 1] * z).sum(0) / (len(x) * math.sqrt(g.weights_[k])))
        parts_sigma.append(
            (gamma[:, k : k + 1] * (z**2 - 1)).sum(0) / (len(x) * math.sqrt(2 * g.weights_[k]))
        )
    expected = _improved(np.concatenate(parts_mu + parts_sigma))
    assert np.allclose(fv.encode(x), expected, atol=1e-8)
    assert fv.dim == 2 * 2 * 2


def test_empty_set_and_bad_input():
    fv = FisherVectors(components=2).fit(np.arange(20.0).reshape(10, 2))
    assert not fv.encode(np.zeros((0, 2))).any()
    with pytest.raises(ValueError, match="at least 8 descriptors"):
        FisherVectors(components=8).fit(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        FisherVectors().encode(np.zeros((1, 2)))
