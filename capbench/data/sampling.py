"""Hard-triplet mining pools (Gordo & Larlus 2017, section 6.1; after Gordo et al. 2016).

One mining round: sample ``N`` (``pool_queries``) query images; for each, sample ``positives_per_query`` of its
relevant images (its ``k`` nearest neighbours under the tf-idf similarity), which gives a pool of
about ``N * (1 + 9)`` images. With the pool's features from the *current* model, every triplet
(query from the first N, positive = a pool image relevant to the query, negative = a pool image
not relevant to it) is scored with ``0.5 * max(0, m - q.p + q.n)``, and the
``top_per_pair`` highest-loss triplets of every (query, positive) pair are kept as candidates.
Training batches of ``batch_size`` triplets are drawn from the candidates; after
``remine_every`` updates the round starts again.

This module only sees indices, a relevance table and features (no model), so it is shared by
any method that mines triplets. The selection is vectorised (per query chunk: a positives x
negatives loss tensor and a top-k per row); ``tests/methods/test_mining.py`` checks it against
a brute-force loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MiningConfig:
    """The ``mining`` section of a row config; defaults are section 6.1's values."""

    # N: query images drawn per round to build the pool (section 6.1: 500); not the
    # evaluation's ``eval.n_queries``
    pool_queries: int = 500
    positives_per_query: int = 9  # relevant images drawn per pool query (section 6.1: 9)
    top_per_pair: int = 100  # hardest negatives kept per (query, positive) (section 6.1: 100)
    batch_size: int = 64  # triplets per update (section 6.1: 64)
    remine_every: int = 64  # t: updates between two mining rounds (section 6.1: 64)
    # The paper keeps the top 100 per (q, p) whatever their loss; dropping zero-loss candidates
    # (no gradient) is an option, off by default to stay exact.
    drop_zero_loss: bool = False
    chunk_queries: int = 64  # memory bound of the vectorised selection, not a method parameter


@dataclass
class MiningPool:
    """Global image indices of one round: the pool (queries first) and the queries' positions."""

    pool: Tensor  # (P,) unique image indices; pool[:n_queries] are the queries
    n_queries: int

    @property
    def queries(self) -> Tensor:
        return self.pool[: self.n_queries]


def sample_pool(
    relevant: Tensor, cfg: MiningConfig, generator: torch.Generator | None = None
) -> MiningPool:
    """Sample the queries and, for each, ``positives_per_query`` of its relevant images.

    ``relevant`` is ``(n_images, k)``: row i lists image i's relevant images (its tf-idf k-NN,
    itself excluded; entries ``< 0`` are padding).
    """
    n_images = relevant.shape[0]
    n_q = min(cfg.pool_queries, n_images)
    queries = torch.randperm(n_images, generator=generator)[:n_q]
    rel = relevant[queries]  # (n_q, k)
    scores = torch.rand(rel.shape, generator=generator)
    scores[rel < 0] = -1.0  # padding never chosen before a real neighbour
    take = min(cfg.positives_per_query, rel.shape[1])
    chosen = torch.gather(rel, 1, scores.topk(take, dim=1).indices)
    extra = chosen[chosen >= 0]
    in_queries = torch.zeros(n_images, dtype=torch.bool)
    in_queries[queries] = True
    extra = torch.unique(extra[~in_queries[extra]])
    extra = extra[torch.randperm(extra.numel(), generator=generator)]
    return MiningPool(pool=torch.cat([queries, extra]), n_queries=n_q)


def pool_relevance(pool: MiningPool, relevant: Tensor) -> Tensor:
    """``(n_queries, P)`` boolean: pool image j is relevant to query i (in its k-NN)."""
    n_images = relevant.shape[0]
    position = torch.full((n_images,), -1, dtype=torch.long)
    position[pool.pool] = torch.arange(pool.pool.numel())
    rel = relevant[pool.queries]  # (n_q, k) global indices
    pos = torch.where(rel >= 0, position[rel.clamp_min(0)], torch.full_like(rel, -1))
    out = torch.zeros(pool.n_queries, pool.pool.numel(), dtype=torch.bool)
    rows = torch.arange(pool.n_queries).unsqueeze(1).expand_as(pos)
    keep = pos >= 0
    out[rows[keep], pos[keep]] = True
    return out


@torch.no_grad()
def select_hard_triplets(
    features: Tensor,
    pool: MiningPool,
    relevant: Tensor,
    cfg: MiningConfig,
    margin: float,
    candidate_features: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Candidates of one round: ``(T, 3)`` global (query, positive, negative) indices and their
    ``(T,)`` losses; per (query, positive) the ``top_per_pair`` highest-loss negatives.

    ``features`` are the pool's embeddings ``(P, D)`` in pool order, from the current model;
    ``margin`` is the method's triplet margin (the loss's, so mining ranks by the loss it trains).
    ``candidate_features`` (default ``features``) embed the positives and negatives when the
    loss compares another modality (WSABIE: image query, text candidates).
    """
    if features.shape[0] != pool.pool.numel():
        raise ValueError(f"{features.shape[0]} features for a pool of {pool.pool.numel()} images")
    feats = features.float()
    cands = feats if candidate_features is None else candidate_features.float()
    if cands.shape[0] != feats.shape[0]:
        raise ValueError(
            f"{cands.shape[0]} candidate features for a pool of {feats.shape[0]} images"
        )
    device = feats.device  # the selection runs where the features are (GPU in the paper profile)
    rel = pool_relevance(pool, relevant).to(device)  # (n_q, P)
    n_q, n_pool = rel.shape
    is_self = torch.zeros_like(rel)
    is_self[torch.arange(n_q, device=device), torch.arange(n_q, device=device)] = True
    negative = ~rel & ~is_self
    rel = rel & ~is_self
    max_pos = int(rel.sum(1).max()) if n_q else 0
    trip_parts: list[Tensor] = []
    loss_parts: list[Tensor] = []
    if max_pos == 0:
        return torch.empty(0, 3, dtype=torch.long), torch.empty(0)
    for start in range(0, n_q, cfg.chunk_queries):
        stop = min(start + cfg.chunk_queries, n_q)
        sims = feats[start:stop] @ cands.T  # (c, P)
        r, neg = rel[start:stop], negative[start:stop]
        # positives padded to max_pos per query: stable sort puts relevant columns first
        order = torch.sort(r.to(torch.int8), dim=1, descending=True, stable=True).indices[
            :, :max_pos
        ]
        pos_valid = torch.gather(r, 1, order)  # (c, max_pos)
        s_pos = torch.gather(sims, 1, order)  # (c, max_pos)
        neg_sims = sims.masked_fill(~neg, float("-inf"))  # (c, P)
        loss = 0.5 * torch.relu(margin - s_pos.unsqueeze(2) + neg_sims.unsqueeze(1))
        loss = loss.masked_fill(~neg.unsqueeze(1), float("-inf"))  # (c, max_pos, P)
        k = min(cfg.top_per_pair, n_pool)
        top_loss, top_neg = loss.topk(k, dim=2)  # (c, max_pos, k)
        keep = pos_valid.unsqueeze(2) & torch.isfinite(top_loss)
        if cfg.drop_zero_loss:
            keep &= top_loss > 0
        q_idx = torch.arange(start, stop, device=device).view(-1, 1, 1).expand_as(top_neg)
        p_idx = order.unsqueeze(2).expand_as(top_neg)
        trip = torch.stack([q_idx[keep], p_idx[keep], top_neg[keep]], dim=1)
        trip_parts.append(pool.pool[trip.cpu()])
        loss_parts.append(top_loss[keep].float().cpu())
    return torch.cat(trip_parts), torch.cat(loss_parts)


def triplet_batches(
    triplets: Tensor, cfg: MiningConfig, generator: torch.Generator | None = None
) -> Tensor:
    """The ``remine_every`` batches of one round, ``(remine_every, batch_size, 3)``, drawn
    uniformly from the candidates (without replacement while there are enough)."""
    need = cfg.remine_every * cfg.batch_size
    if triplets.shape[0] == 0:
        raise ValueError(
            "no candidate triplets were mined (is every image relevant to every query?)"
        )
    if triplets.shape[0] >= need:
        pick = torch.randperm(triplets.shape[0], generator=generator)[:need]
    else:
        pick = torch.randint(triplets.shape[0], (need,), generator=generator)
    return triplets[pick].view(cfg.remine_every, cfg.batch_size, 3)
