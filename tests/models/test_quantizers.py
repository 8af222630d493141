"""The differentiable product quantizer: codes, reconstructions, straight-through gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capbench.models.quantizers import SoftProductQuantizer


def _quantizer(dim=8, m=2, k=4, t=0.5) -> SoftProductQuantizer:
    torch.manual_seed(0)
    return SoftProductQuantizer(dim, m, k, t)


def test_codes_are_the_nearest_codeword_of_each_subspace():
    q = _quantizer()
    x = torch.randn(5, 8)
    codes = q.encode(x)
    assert codes.shape == (5, 2)
    for s in range(2):
        sub = x[:, 4 * s : 4 * s + 4]
        brute = torch.cdist(sub, q.codebooks[s].detach()).argmin(1)
        assert torch.equal(codes[:, s], brute)
    recon = q.decode(codes)
    torch.testing.assert_close(recon[:, 4:], q.codebooks[1][codes[:, 1]].detach())


def test_forward_value_is_the_hard_reconstruction_and_gradients_flow():
    q = _quantizer()
    x = torch.randn(6, 8, requires_grad=True)
    out, codes = q(x)
    torch.testing.assert_close(out, q.decode(codes))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # through the soft assignment
    assert q.codebooks.grad is not None and q.codebooks.grad.abs().sum() > 0


def test_storage_and_bad_sizes():
    q = SoftProductQuantizer(16, 8, 256, 1.0)
    assert q.bits_per_item == 64 and q.bytes_per_item == 8.0
    with pytest.raises(ValueError, match="multiple"):
        SoftProductQuantizer(10, 4, 16, 1.0)
    with pytest.raises(ValueError, match="power of two"):
        SoftProductQuantizer(8, 2, 12, 1.0)
    with pytest.raises(ValueError, match=r"expected \(N, 16\)"):
        q.encode(torch.randn(3, 15))


def _narrow_cone(n: int = 2000, dim: int = 32, seed: int = 0) -> torch.Tensor:
    """Unit vectors close to one direction, as a trained joint space's embeddings are."""
    g = torch.Generator().manual_seed(seed)
    x = torch.ones(dim) + 0.15 * torch.randn(n, dim, generator=g)
    return torch.nn.functional.normalize(x, dim=1)


def test_kmeans_codebooks_cover_embeddings_that_random_ones_miss():
    torch.manual_seed(0)
    q = SoftProductQuantizer(32, 4, 64, 0.1)
    x = _narrow_cone()

    @torch.no_grad()
    def distinct_and_error() -> tuple[int, float]:
        codes = q.encode(x)
        distinct = min(len(set(codes[:, m].tolist())) for m in range(q.subspaces))
        error = float(((q.decode(codes) - x).norm(dim=1) / x.norm(dim=1)).mean())
        return distinct, error

    distinct_random, error_random = distinct_and_error()
    q.fit_codebooks(x, seed=0)
    distinct_fit, error_fit = distinct_and_error()
    assert distinct_random < 16 and distinct_fit >= 48  # of 64 codewords per subspace
    assert error_fit < error_random / 3


def test_fitted_codebooks_are_faiss_product_quantizer_training():
    import faiss

    x = _narrow_cone(600, 16, seed=1)
    q = SoftProductQuantizer(16, 2, 16, 0.1)
    q.fit_codebooks(x, seed=5, iterations=10)
    pq = faiss.ProductQuantizer(16, 2, 4)
    pq.cp.seed, pq.cp.niter = 5, 10
    pq.train(x.numpy())
    ours = q.codebooks.detach().reshape(-1).numpy()
    np.testing.assert_allclose(ours, faiss.vector_to_array(pq.centroids), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="at least K = 16 rows"):
        q.fit_codebooks(x[:10])


def test_without_faiss_the_quantizer_says_what_to_install(monkeypatch, tmp_path):
    """faiss is an extra: a quantized row on an install without it fails at once, before any
    data is read, saying what needs faiss and how to install it; a row without the quantizer
    does not ask for it."""
    import sys

    import numpy as np

    from capbench.eval.protocols.image_text_retrieval import faiss_pq_search
    from capbench.methods.quantized_embedding.rows import run_row
    from tests.methods.ci_rows import run_ci_row

    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails
    q = _quantizer()
    with pytest.raises(
        ImportError, match=r"product quantizer .* needs faiss: .*pip install faiss-cpu"
    ):
        q.fit_codebooks(torch.randn(16, 8))
    books = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ImportError, match=r"product quantizer .* needs faiss"):
        faiss_pq_search(books, np.zeros((3, 2), np.int64), np.zeros((1, 8), np.float32), 1)
    missing = tmp_path / "no_data"  # never reached: the check comes first
    with pytest.raises(ImportError, match=r"product quantizer .* needs faiss"):
        run_ci_row(run_row, "malali2022", "malali", missing, tmp_path / "work")
    with pytest.raises(Exception) as other:  # the unquantized row gets as far as the data
        run_ci_row(run_row, "malali2022", "vsepp", missing, tmp_path / "work2")
    assert "see data_cards/coco.md" in str(other.value)  # the data error, not faiss's
