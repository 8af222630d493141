"""Fisher vectors (Perronnin et al. 2010, "improved" FV) of sets of local descriptors.

Gordo & Larlus's Table 1 row "Human captions: word2vec + FV" represents an image by the Fisher
vector of the word2vec vectors of its caption words. With a diagonal GMM (weights w_k, means
mu_k, standard deviations sigma_k) fitted on training descriptors and the posteriors gamma_t(k)
of a set's T descriptors x_t, the FV concatenates, for every component,

    G_mu_k    = 1 / (T sqrt(w_k))   * sum_t gamma_t(k) (x_t - mu_k) / sigma_k
    G_sigma_k = 1 / (T sqrt(2 w_k)) * sum_t gamma_t(k) [((x_t - mu_k) / sigma_k)^2 - 1]

then applies the power normalisation sign(z) |z|^0.5 and L2-normalises, so the dot product of
two FVs is their similarity. The GMM is scikit-learn's ``GaussianMixture`` (diagonal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.mixture import GaussianMixture


class FisherVectors:
    """Fit a diagonal GMM on descriptors, then encode descriptor sets as improved FVs."""

    def __init__(self, components: int = 64, seed: int = 0, max_fit: int = 200_000) -> None:
        self.components = components
        self.seed = seed
        self.max_fit = max_fit  # descriptors the GMM is fitted on (a seeded sample beyond)
        self.gmm: GaussianMixture | None = None

    def fit(self, descriptors: np.ndarray) -> FisherVectors:
        x = np.asarray(descriptors, dtype=np.float64)
        if x.ndim != 2 or len(x) < self.components:
            raise ValueError(
                f"a {self.components}-component GMM needs at least {self.components} "
                f"descriptors (rows), got shape {x.shape}"
            )
        if len(x) > self.max_fit:
            keep = np.random.default_rng(self.seed).choice(len(x), self.max_fit, replace=False)
            x = x[np.sort(keep)]
        self.gmm = GaussianMixture(
            self.components, covariance_type="diag", random_state=self.seed, reg_covar=1e-6
        ).fit(x)
        return self

    @property
    def dim(self) -> int:
        if self.gmm is None:
            raise RuntimeError("FisherVectors: fit() first")
        return 2 * self.components * self.gmm.means_.shape[1]

    def encode(self, descriptors: np.ndarray) -> np.ndarray:
        """The improved FV of one set ``(T, D)``; an empty set gives the zero vector."""
        if self.gmm is None:
            raise RuntimeError("FisherVectors: fit() first")
        x = np.asarray(descriptors, dtype=np.float64).reshape(-1, self.gmm.means_.shape[1])
        if len(x) == 0:
            return np.zeros(self.dim)
        w, mu = self.gmm.weights_, self.gmm.means_
        sigma = np.sqrt(self.gmm.covariances_)
        gamma = self.gmm.predict_proba(x)  # (T, K)
        z = (x[:, None, :] - mu[None]) / sigma[None]  # (T, K, D)
        t = len(x)
        g_mu = np.einsum("tk,tkd->kd", gamma, z) / (t * np.sqrt(w))[:, None]
        g_sigma = np.einsum("tk,tkd->kd", gamma, z**2 - 1.0) / (t * np.sqrt(2 * w))[:, None]
        fv = np.concatenate([g_mu.ravel(), g_sigma.ravel()])
        fv = np.sign(fv) * np.sqrt(np.abs(fv))
        norm = np.linalg.norm(fv)
        return fv / norm if norm > 0 else fv

    def encode_many(self, sets: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.encode(s) for s in sets]) if sets else np.zeros((0, self.dim))
