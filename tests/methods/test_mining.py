"""Hard-triplet mining (section 6.1): the vectorised selection against a brute-force loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from capbench.data.sampling import (
    MiningConfig,
    pool_relevance,
    sample_pool,
    select_hard_triplets,
    triplet_batches,
)


def _relevant(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        others = torch.tensor([j for j in range(n) if j != i])
        rows.append(others[torch.randperm(n - 1, generator=g)[:k]])
    return torch.stack(rows)


def _brute_force(feats, pool, relevant, cfg, margin):
    """For each query, each relevant pool image, every non-relevant pool image: the loss; keep
    the top ``top_per_pair`` per (query, positive)."""
    ids = pool.pool.tolist()
    out = {}
    for qi, q in enumerate(ids[: pool.n_queries]):
        rel = set(relevant[q].tolist())
        for pi, p in enumerate(ids):
            if p == q or p not in rel:
                continue
            cands = []
            for ni, n in enumerate(ids):
                if n == q or n in rel:
                    continue
                loss = 0.5 * max(
                    0.0, margin - float(feats[qi] @ feats[pi]) + float(feats[qi] @ feats[ni])
                )
                cands.append((loss, n))
            cands.sort(reverse=True)
            out[(q, p)] = cands[: cfg.top_per_pair]
    return out


def test_selection_matches_brute_force():
    n_images, k = 60, 6
    relevant = _relevant(n_images, k, 0)
    cfg = MiningConfig(pool_queries=8, positives_per_query=3, top_per_pair=5, chunk_queries=3)
    pool = sample_pool(relevant, cfg, torch.Generator().manual_seed(0))
    assert pool.pool.unique().numel() == pool.pool.numel()
    feats = F.normalize(
        torch.randn(pool.pool.numel(), 5, generator=torch.Generator().manual_seed(1)), dim=1
    )
    triplets, losses = select_hard_triplets(feats, pool, relevant, cfg, margin=2.0)
    expected = _brute_force(feats, pool, relevant, cfg, margin=2.0)
    got: dict = {}
    for (q, p, n), loss in zip(triplets.tolist(), losses.tolist()):
        got.setdefault((q, p), []).append((loss, n))
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        # margin 2 makes every loss positive and distinct: the selected sets are identical
        assert sorted(n for _, n in got[key]) == sorted(n for _, n in exp)
        torch.testing.assert_close(sorted(v for v, _ in got[key]), sorted(v for v, _ in exp))


def test_negatives_never_relevant_and_top_count():
    n_images, k = 200, 8
    relevant = _relevant(n_images, k, 3)
    cfg = MiningConfig(pool_queries=20, positives_per_query=4, top_per_pair=25)
    pool = sample_pool(relevant, cfg, torch.Generator().manual_seed(4))
    # each query brings its sampled positives: the pool has them all
    rel = pool_relevance(pool, relevant)
    assert (rel.sum(1) >= 4).all()
    feats = F.normalize(torch.randn(pool.pool.numel(), 16), dim=1)
    triplets, losses = select_hard_triplets(feats, pool, relevant, cfg, margin=0.1)
    rel_sets = {int(i): set(relevant[i].tolist()) for i in pool.queries}
    counts: dict = {}
    for q, p, n in triplets.tolist():
        assert p in rel_sets[q] and n not in rel_sets[q] and n != q and p != q
        counts[(q, p)] = counts.get((q, p), 0) + 1
    n_pairs = int(rel.sum())
    assert len(counts) == n_pairs
    assert set(counts.values()) == {25}  # exactly top_per_pair per (query, positive)
    assert (losses >= 0).all()
    batches = triplet_batches(
        triplets, MiningConfig(batch_size=16, remine_every=4), torch.Generator().manual_seed(0)
    )
    assert batches.shape == (4, 16, 3)


def test_drop_zero_loss_keeps_only_active():
    relevant = _relevant(50, 5, 5)
    cfg = MiningConfig(pool_queries=10, positives_per_query=3, top_per_pair=40, drop_zero_loss=True)
    pool = sample_pool(relevant, cfg, torch.Generator().manual_seed(6))
    feats = F.normalize(torch.randn(pool.pool.numel(), 4), dim=1)
    _, losses = select_hard_triplets(feats, pool, relevant, cfg, margin=0.05)
    assert losses.numel() > 0 and (losses > 0).all()
