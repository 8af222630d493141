"""Exact, memory-bounded top-R search over embeddings, and Gordo-style curves computed from it.

Every score is *canonical*: float32(fsum(q_i d_i)), the float32 rounding of the correctly
rounded sum of the exact products (:func:`_round_canonical` gets it from any float64 estimate
and recomputes the rare ambiguous pair exactly). Rankings sort canonical scores by (score desc,
index asc). So results never depend on the BLAS kernel, the chunking or the backend:

* ``torch`` (default on CPU): a float64 matmul of each query chunk against the whole database,
  then the canonical rounding and a deterministic top-k. Measured faster on CPU than faiss plus
  re-scoring, because re-scoring R=1000 candidates per query gathers ~1000 rows per query.
* ``faiss`` (default when faiss has a GPU): ``IndexFlatIP`` (on the GPU when available) finds
  float32 candidates; they are re-scored canonically and the list is proven complete with a
  float32 error bound (anything not retrieved scores at most ``kth_approx + bound``); queries
  that fail the proof are searched again with twice as many candidates.

Both backends return identical indices and scores (tested with exact duplicates in the data).

Memory: only a [chunk x database] block exists at a time; the chunk is derived from
``memory_budget_bytes`` (see :func:`plan_query_chunk`), after setting aside a float64 copy of
the database when that copy fits in half the budget. Peak memory is the inputs plus roughly the
budget (10k x 100k, R up to 1000, 1 GiB budget: below 4 GB peak RSS, checked by the slow test
in ``tests/eval/test_retrieval.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from capbench.eval.metrics import (
    CurveAccumulator,
    _check_rs,
    _mask_self,
    curve_auc,
    query_curves,
    topk_deterministic,
)

DEFAULT_MEMORY_BUDGET = 1 << 30  # 1 GiB of working memory per call
_BYTES_PER_DB_ENTRY = 40  # float64 products + bound, float32 scores, masks, float64 relevance
_EXTRA_CANDIDATES = 16  # beyond R, so the completeness proof rarely needs a second round
_F32_EPS = 2.0**-24

RelFn = Callable[[np.ndarray], Any]


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit L2 norm (zero rows stay zero), so inner product = cosine."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def plan_query_chunk(n_db: int, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Number of queries per block so that the [chunk x database] work stays within the budget."""
    per_query = _BYTES_PER_DB_ENTRY * max(n_db, 1)
    if memory_budget_bytes < per_query:
        raise ValueError(
            f"memory budget {memory_budget_bytes} B is below one query's need ({per_query} B "
            f"for a database of {n_db})"
        )
    return int(memory_budget_bytes // per_query)


def _exact_dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """float32 rounding of the correctly rounded float64 sum of the exact products."""
    return float(np.float32(math.fsum((a.double() * b.double()).tolist())))


def _round_canonical(
    v: torch.Tensor,
    q: torch.Tensor,
    db_norm: torch.Tensor,
    row: Callable[[int, int], torch.Tensor],
) -> torch.Tensor:
    """Canonical float32 scores from float64 estimates ``v`` of the inner products.

    The canonical score of (q, d) is float32(fsum(q_i d_i)): a single well-defined number. Any
    float64 summation order is within e = 2 (D + 2) 2^-53 |q| |d| of the exact sum, so where the
    whole interval [v - e, v + e] rounds to one float32 that float32 is the canonical score,
    whichever BLAS kernel produced ``v``; the rare pairs straddling a rounding boundary (about
    D 2^-28 of them) are recomputed exactly with ``math.fsum``.
    """
    e = (2.0 * (q.shape[1] + 2) * 2.0**-53) * q.norm(dim=1).double().unsqueeze(1) * db_norm
    lo = (v - e).float()
    fragile = torch.nonzero(lo != (v + e).float()).tolist()
    del e
    for i, j in fragile:
        lo[i, j] = _exact_dot(q[i], row(i, j))
    return lo


class _Searcher:
    """Exact top-k over a database with one of two backends (see the module docstring)."""

    def __init__(self, db: torch.Tensor, backend: str, memory_budget_bytes: int) -> None:
        if backend == "auto":
            backend = "faiss" if _faiss_gpus() > 0 else "torch"
        if backend not in ("faiss", "torch"):
            raise ValueError(f"unknown backend {backend!r}; expected auto, faiss or torch")
        self.backend, self.db = backend, db
        self.db_norm = db.norm(dim=1).double()
        # float64 copy for the torch backend's matmul when it fits in half the budget
        fits = db.numel() * 8 <= memory_budget_bytes // 2 and backend == "torch"
        self.db64 = db.double() if fits else None
        self.reserved = 0 if self.db64 is None else db.numel() * 8
        self.gpu_k_limit: int | None = None
        if backend == "faiss":
            faiss = import_faiss()
            index = faiss.IndexFlatIP(db.shape[1])
            index.add(np.ascontiguousarray(db.numpy(), dtype=np.float32))
            if _faiss_gpus() > 0:
                self._res = faiss.StandardGpuResources()
                index = faiss.index_cpu_to_gpu(self._res, 0, index)
                self.gpu_k_limit = 2048  # faiss GPU k-selection limit
            self.index = index

    def topk(
        self, q: torch.Tensor, k: int, self_cols: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(canonical float32 scores, indices), [len(q) x k], ranked by (score desc, index asc)."""
        if self.backend == "torch":
            return self._topk_full(q, k, self_cols)
        # re-scoring gathers [queries x candidates x D] float64: keep that block near 256 MiB
        sub = max(1, (256 << 20) // ((k + 1 + _EXTRA_CANDIDATES) * self.db.shape[1] * 8))
        parts = [
            self._topk_candidates(
                q[s : s + sub], k, None if self_cols is None else self_cols[s : s + sub]
            )
            for s in range(0, q.shape[0], sub)
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _topk_full(self, q, k, self_cols):  # type: ignore[no-untyped-def]
        q64 = q.double()
        if self.db64 is not None:
            v = q64 @ self.db64.T
        else:  # convert the database block by block instead of holding a float64 copy
            step = max(1, (64 << 20) // (8 * self.db.shape[1]))
            v = torch.cat([q64 @ self.db[j : j + step].double().T
                           for j in range(0, self.db.shape[0], step)], dim=1)  # fmt: skip
        canon = _round_canonical(v, q, self.db_norm.unsqueeze(0), lambda i, j: self.db[j])
        del v
        return topk_deterministic(_mask_self(canon, self_cols, float("-inf")), k)

    def _approx(self, q: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.gpu_k_limit is None or k <= self.gpu_k_limit:
            dist, idx = self.index.search(np.ascontiguousarray(q.numpy(), np.float32), k)
            return torch.from_numpy(dist), torch.from_numpy(idx)
        return torch.topk(q @ self.db.T, k, dim=1)

    def _topk_candidates(self, q, k, self_cols):  # type: ignore[no-untyped-def]
        """faiss candidates, canonical re-scoring, and a proof that nothing better was missed."""
        n_db, dim = self.db.shape
        # float32 search error (any order) plus the canonical float32 rounding, with margin
        bound = (
            (2.0 * dim * _F32_EPS + 2.0 * _F32_EPS)
            * q.norm(dim=1).double()
            * float(self.db_norm.max())
        )
        out_s = torch.empty((q.shape[0], k), dtype=torch.float32)
        out_i = torch.empty((q.shape[0], k), dtype=torch.long)
        todo = torch.arange(q.shape[0])
        n_cand = min(n_db, k + 1 + _EXTRA_CANDIDATES)
        while todo.numel():
            approx, cand = self._approx(q[todo], n_cand)
            if (cand < 0).any():
                raise RuntimeError("faiss returned fewer candidates than requested")
            cand = torch.sort(cand, dim=1).values  # ascending index: ties then break by index
            qt = q[todo]
            rows = self.db.index_select(0, cand.reshape(-1)).view(*cand.shape, dim).double()
            v = torch.bmm(rows, qt.double().unsqueeze(2)).squeeze(2)
            del rows
            canon = _round_canonical(
                v, qt, self.db_norm[cand], lambda i, j, c=cand: self.db[c[i, j]]
            )
            if self_cols is not None:
                own = self_cols[todo].unsqueeze(1)
                canon = canon.masked_fill((cand == own) & (own >= 0), float("-inf"))
            top_s, pos = topk_deterministic(canon, k)
            if n_cand < n_db:
                done = top_s[:, -1].double() > approx.min(dim=1).values.double() + bound[todo]
            else:
                done = torch.ones_like(todo, dtype=torch.bool)
            out_s[todo[done]] = top_s[done]
            out_i[todo[done]] = cand.gather(1, pos)[done]
            todo = todo[~done]
            n_cand = min(n_db, 2 * n_cand)
        return out_s, out_i


# faiss is optional: the torch backend needs none. faiss-cpu comes with capbench[dev]; on a GPU
# node capbench[gpu] installs faiss-gpu, which provides the same ``faiss`` module.
FAISS_HINT = "pip install 'capbench[gpu]' on a GPU node (faiss-gpu), or pip install faiss-cpu"


def import_faiss(needed_by: str = "the faiss retrieval backend") -> Any:
    """The ``faiss`` module, or an ImportError saying that ``needed_by`` needs it and how to
    install it: every use of faiss in capbench imports it here."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError(f"{needed_by} needs faiss: {FAISS_HINT}") from err
    return faiss


def _faiss_gpus() -> int:
    """GPUs faiss can use (0 without faiss, or with its CPU build)."""
    try:
        import faiss
    except ImportError:
        return 0
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if n == 0 and not hasattr(faiss, "StandardGpuResources") and _installed("faiss-gpu"):
        # faiss-cpu and faiss-gpu write the same faiss/ files; the one installed last wins
        warnings.warn(
            "faiss-gpu is installed but the faiss module is faiss-cpu's CPU build (both install "
            "faiss/, the last one wins): retrieval runs on the CPU. Fix it with "
            "`pip install --force-reinstall --no-deps faiss-gpu`",
            RuntimeWarning,
            stacklevel=2,
        )
    return n


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _prepare(query_emb: Any, db_emb: Any) -> tuple[torch.Tensor, torch.Tensor]:
    # CPU float32: faiss moves its own copy to the GPU; the canonical re-scoring runs on CPU
    q = torch.as_tensor(query_emb).detach().cpu().float()
    db = torch.as_tensor(db_emb).detach().cpu().float()
    if q.dim() != 2 or db.dim() != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(f"query {tuple(q.shape)} and database {tuple(db.shape)} embeddings differ")
    if not (torch.isfinite(q).all() and torch.isfinite(db).all()):
        raise ValueError("embeddings contain nan or inf")
    return q.contiguous(), db.contiguous()


def resolve_self_columns(
    n_queries: int,
    query_ids: Sequence[str] | None,
    db_ids: Sequence[str] | None,
    exclude_self: bool | Sequence[int] | np.ndarray | torch.Tensor,
) -> torch.Tensor | None:
    """Per query, the database position of the query itself (-1 if absent), or None.

    ``exclude_self=True`` needs ``query_ids`` and ``db_ids`` (positions are never guessed);
    an explicit array of positions is also accepted.
    """
    if exclude_self is False or exclude_self is None:
        return None
    if exclude_self is True:
        if query_ids is None or db_ids is None:
            raise ValueError("exclude_self=True needs query_ids and db_ids to find each query")
        if len(query_ids) != n_queries:
            raise ValueError(f"{len(query_ids)} query ids for {n_queries} query embeddings")
        where = {i: p for p, i in enumerate(db_ids)}
        if len(where) != len(db_ids):
            raise ValueError("db_ids contain duplicates; de-duplicate embeddings first")
        return torch.tensor([where.get(i, -1) for i in query_ids], dtype=torch.long)
    cols = torch.as_tensor(np.asarray(exclude_self)).long().reshape(-1)
    if cols.numel() != n_queries:
        raise ValueError(f"exclude_self has {cols.numel()} entries for {n_queries} queries")
    return cols


def search_topk(
    query_emb: Any,
    db_emb: Any,
    k: int,
    exclude_self: Any = None,
    backend: str = "auto",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product: (canonical float32 scores, indices), each [queries x k].

    Ranked by (score desc, index asc); identical for both backends. Pass L2-normalised
    embeddings for cosine. ``exclude_self``: per query, its database position (-1 if absent).
    """
    q, db = _prepare(query_emb, db_emb)
    cols = resolve_self_columns(q.shape[0], None, None, exclude_self)
    n_avail = db.shape[0] - (1 if cols is not None and (cols >= 0).any() else 0)
    if not 1 <= k <= n_avail:
        raise ValueError(f"k={k} outside [1, {n_avail}] retrievable items")
    searcher = _Searcher(db, backend, memory_budget_bytes)
    chunk = plan_query_chunk(db.shape[0], memory_budget_bytes - searcher.reserved)
    parts = [
        searcher.topk(q[s : s + chunk], k, None if cols is None else cols[s : s + chunk])
        for s in range(0, q.shape[0], chunk)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _rel_block(rel_fn: RelFn, positions: np.ndarray, n_db: int) -> torch.Tensor:
    block = rel_fn(positions)
    if hasattr(block, "toarray"):  # scipy.sparse
        block = block.toarray()
    t = torch.as_tensor(np.asarray(block) if not isinstance(block, torch.Tensor) else block)
    t = t.detach().cpu().double()
    if tuple(t.shape) != (len(positions), n_db):
        raise ValueError(
            f"rel_fn returned shape {tuple(t.shape)} for {len(positions)} queries; "
            f"expected ({len(positions)}, {n_db})"
        )
    if (t < 0).any() or not torch.isfinite(t).all():
        raise ValueError("rel_fn must return finite, non-negative relevance")
    return t


def semantic_retrieval_curves(
    query_emb: Any,
    db_emb: Any,
    rel_fn: RelFn,
    rs: Sequence[int] | np.ndarray,
    query_ids: Sequence[str] | None = None,
    db_ids: Sequence[str] | None = None,
    exclude_self: bool | Sequence[int] | np.ndarray = True,
    backend: str = "auto",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> dict[str, Any]:
    """Gordo & Larlus NDCG@R / PCC@R curves (and their AUCs) straight from embeddings.

    ``rel_fn(query_positions)`` returns the relevance of those queries to every database item,
    [len(positions) x n_db], dense or scipy.sparse (e.g. a sparse tf-idf product), so the full
    relevance matrix never exists. Definitions are those of :func:`capbench.eval.metrics.
    semantic_curves`; similarity is the inner product (pass L2-normalised embeddings).
    """
    q, db = _prepare(query_emb, db_emb)
    cols = resolve_self_columns(q.shape[0], query_ids, db_ids, exclude_self)
    n_db = db.shape[0]
    n_avail = n_db - (1 if cols is not None and (cols >= 0).any() else 0)
    r = _check_rs(rs, n_avail)
    r_max = int(r[-1])
    searcher = _Searcher(db, backend, memory_budget_bytes)
    chunk = plan_query_chunk(n_db, memory_budget_bytes - searcher.reserved)
    acc = CurveAccumulator(len(r))
    starts = range(0, q.shape[0], chunk)
    for s in tqdm(starts, desc="semantic retrieval", disable=not progress):
        c = None if cols is None else cols[s : s + chunk]
        top_s, top_i = searcher.topk(q[s : s + chunk], r_max, c)
        rel = _rel_block(rel_fn, np.arange(s, s + top_s.shape[0]), n_db)
        ideal = torch.topk(_mask_self(rel, c, float("-inf")), r_max, dim=1).values
        acc.add(*query_curves(top_s, rel.gather(1, top_i), ideal, r))
        del rel, ideal
    out = acc.result()
    out["rs"] = r
    out["ndcg_auc"] = curve_auc(out["ndcg"], r)
    out["pcc_auc"] = curve_auc(out["pcc"], r)
    return out
