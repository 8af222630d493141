"""Retrieval engine: exact top-k, identical across backends and budgets, curves equal the dense ones."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from capbench.eval.metrics import default_r_grid, semantic_curves
from capbench.eval.retrieval import (
    l2_normalize,
    plan_query_chunk,
    search_topk,
    semantic_retrieval_curves,
)


def _tied_database(n_db=600, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    db = l2_normalize(torch.randn(n_db, dim, generator=g))
    n_dup = n_db // 6
    db[n_db // 2 : n_db // 2 + n_dup] = db[:n_dup]  # exact duplicates: tied scores
    return db


def test_backends_identical_and_exact_under_ties():
    db = _tied_database()
    q = db[:80].clone()
    cols = torch.arange(80)
    small_budget = 40 * db.shape[0] * 7  # 7 queries per block, no float64 copy
    s_f, i_f = search_topk(q, db, 40, exclude_self=cols, backend="faiss")
    s_t, i_t = search_topk(
        q, db, 40, exclude_self=cols, backend="torch", memory_budget_bytes=small_budget
    )
    assert torch.equal(i_f, i_t) and torch.equal(s_f, s_t)
    # brute force: canonical score = float32 of the exactly summed products (math.fsum),
    # ranked by (score desc, index asc) with Python's sort
    for row in range(0, 80, 7):
        exact = [
            float(np.float32(math.fsum((q[row].double() * db[j].double()).tolist())))
            for j in range(db.shape[0])
        ]
        order = sorted((j for j in range(db.shape[0]) if j != row), key=lambda j: (-exact[j], j))
        assert i_f[row].tolist() == order[:40]
        assert s_f[row].tolist() == [exact[j] for j in order[:40]]


def test_many_exact_ties_force_candidate_expansion():
    # 300 identical database rows: the top-50 boundary sits inside a 300-way tie, so the first
    # candidate round cannot prove completeness and must grow; lower indices must win
    db = torch.ones(400, 4) / 2.0
    db[300:] = l2_normalize(torch.randn(100, 4, generator=torch.Generator().manual_seed(1))) * 0.5
    q = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    for backend in ("faiss", "torch"):
        _, idx = search_topk(q, db, 50, backend=backend)
        assert idx[0].tolist() == list(range(50))


def test_curves_from_embeddings_equal_dense_curves_with_sparse_relevance():
    db = _tied_database(n_db=500)
    q_pos = np.arange(0, 500, 5)
    q = db[q_pos]
    rng = np.random.default_rng(0)
    rel = sp.random(100, 500, density=0.05, random_state=rng, format="csr")
    rs = default_r_grid(500, r_max=120, n_points=30)
    ids = [f"img{i}" for i in range(500)]
    out = semantic_retrieval_curves(
        q, db, lambda p: rel[p], rs, query_ids=[ids[i] for i in q_pos], db_ids=ids,
        memory_budget_bytes=40 * 500 * 9,
    )  # fmt: skip
    canonical = (q.double() @ db.double().T).float()  # float32 of the exact sums, here
    dense = semantic_curves(canonical.numpy(), rel.toarray(), rs, exclude_self=q_pos)
    np.testing.assert_allclose(out["ndcg"], dense["ndcg"], rtol=1e-12)
    np.testing.assert_allclose(out["pcc"], dense["pcc"], rtol=1e-9, atol=1e-12)
    assert out["n_queries"] == 100
    assert 0 < out["ndcg_auc"] < 100


def test_exclude_self_needs_ids():
    db = _tied_database(n_db=50)
    with pytest.raises(ValueError, match="query_ids"):
        semantic_retrieval_curves(db[:5], db, lambda p: np.ones((len(p), 50)), [1, 2])


def test_rel_fn_shape_is_checked():
    db = _tied_database(n_db=50)
    with pytest.raises(ValueError, match="rel_fn returned"):
        semantic_retrieval_curves(
            db[:5], db, lambda p: np.ones((len(p), 49)), [1, 2], exclude_self=False
        )


def test_chunk_plan_respects_budget():
    budget = 4 << 30
    chunk = plan_query_chunk(100_000, budget)
    assert chunk * 40 * 100_000 <= budget < (chunk + 1) * 40 * 100_000
    with pytest.raises(ValueError, match="budget"):
        plan_query_chunk(100_000, 1000)


@pytest.mark.slow
def test_10k_by_100k_fits_in_4_gb():
    """Peak RSS of a full 10k x 100k run (R up to 1000) stays below 4 GB, inputs included."""
    script = textwrap.dedent(
        """
        import resource, torch, numpy as np
        torch.set_num_threads(2)
        from capbench.eval.metrics import default_r_grid
        from capbench.eval.retrieval import l2_normalize, semantic_retrieval_curves
        g = torch.Generator().manual_seed(0)
        db = l2_normalize(torch.randn(100_000, 32, generator=g))
        txt = torch.rand(100_000, 8, generator=g)
        q_pos = np.arange(10_000)
        rel_fn = lambda p: torch.relu(txt[q_pos[p]] @ txt.T - 1.5)
        out = semantic_retrieval_curves(db[:10_000], db, rel_fn, default_r_grid(100_000),
                                        exclude_self=q_pos, memory_budget_bytes=1 << 30)
        assert out["n_queries"] == 10_000
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    peak = int(done.stdout.strip().splitlines()[-1])
    assert peak < 4 * 10**9, f"peak RSS {peak / 1e9:.2f} GB"


def test_canonical_rounding_recomputes_ambiguous_pairs():
    from capbench.eval.retrieval import _round_canonical

    # q . d = 1 + 2^-24 exactly: halfway between float32 1 and its successor -> ties to even (1.0)
    q = torch.tensor([[1.0, 2.0**-12]])
    d = torch.tensor([[1.0, 2.0**-12]])
    v = torch.tensor([[1.0 + 2.0**-24 + 2.0**-50]], dtype=torch.float64)  # a slightly-off estimate
    got = _round_canonical(v, q, d.norm(dim=1).double().unsqueeze(0), lambda i, j: d[j])
    assert got.item() == float(np.float32(1.0 + 2.0**-24)) == 1.0
