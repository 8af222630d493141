"""Exact metrics for the five protocols, as plain functions on arrays/tensors.

Conventions shared by every function here (stated once so that numbers never silently differ):

* Rankings sort by score descending and break ties by the lower database index, always
  (:func:`topk_deterministic`). Results therefore never depend on sort stability, chunk size or
  backend.
* Curves and nDCG values are fractions in [0, 1]; numbers that papers report as percentages
  (recall, top-1, AP@50, mAP, agreement, AUC) are returned in percent.
* A per-query quantity that is undefined (no relevant item, constant top-R for Pearson) is left out
  of the mean over queries, never counted as 0 or 1; a mean with nothing defined is ``nan``.
* Inputs that have no defined answer are a ``ValueError`` saying where, never a silent number: a NaN
  score (it has no rank), a label with no class row, a grade of ±inf, no queries at all. A score
  of -inf is a valid lowest score and is ranked as one (masks never tie with it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

# ---------------------------------------------------------------------------------------------
# ranking core


def _as_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Zero-copy where possible: numpy arrays become tensors sharing memory."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t if dtype is None else t.to(dtype)


def _first_where(mask: torch.Tensor) -> tuple[int, ...]:
    """Index of the first True entry of ``mask`` (row-major), for error messages."""
    return tuple(int(i) for i in torch.nonzero(mask)[0])


def _require_some(n: int, what: str) -> None:
    if n == 0:
        raise ValueError(f"no {what}: the metric is undefined on empty input")


def topk_deterministic(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row sorted by (value desc, column index asc); exact under ties.

    ``torch.topk`` picks an arbitrary member of a tie at the k-th position; here the k-th value is
    found first, every strictly larger item is kept and the tie at the boundary is filled with its
    lowest column indices, so the selected set and its order are fully determined.
    """
    if x.dim() != 2:
        raise ValueError(f"expected a 2-d score block, got shape {tuple(x.shape)}")
    n_rows, n_cols = x.shape
    if not 0 <= k <= n_cols:
        raise ValueError(f"k={k} outside [0, {n_cols}] (number of columns)")
    if k == 0 or n_rows == 0:
        empty = x.new_empty((n_rows, k))
        return empty, torch.empty((n_rows, k), dtype=torch.long)
    if x.is_floating_point() and torch.isnan(x).any():
        raise ValueError("scores contain NaN; rankings would be undefined")
    vals, idx = torch.topk(x, k, dim=1, largest=True, sorted=True)
    kth = vals[:, k - 1 : k]
    # the selected set is ambiguous only where the boundary value has more copies than were taken
    ambiguous = (x == kth).sum(dim=1) > (vals == kth).sum(dim=1)
    if ambiguous.any():
        rows = torch.nonzero(ambiguous).reshape(-1)
        sub, kth_sub = x[rows], kth[rows]
        greater, equal = sub > kth_sub, sub == kth_sub
        need = k - greater.sum(dim=1, keepdim=True)
        take = greater | (equal & (equal.cumsum(dim=1, dtype=torch.int32) <= need))
        idx = idx.clone()
        idx[rows] = take.nonzero()[:, 1].view(rows.numel(), k)
    idx = torch.sort(idx, dim=1).values  # ascending index, so the stable sort breaks ties by it
    vals = x.gather(1, idx)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), idx.gather(1, order)


def _self_columns(exclude_self: Any, n_queries: int, n_db: int) -> torch.Tensor | None:
    """Validate ``exclude_self``: per query, its own database column (-1 = not in the database)."""
    if exclude_self is None:
        return None
    cols = _as_tensor(exclude_self).long().reshape(-1)
    if cols.numel() != n_queries:
        raise ValueError(f"exclude_self has {cols.numel()} entries for {n_queries} queries")
    if ((cols < -1) | (cols >= n_db)).any():
        raise ValueError(f"exclude_self columns must be in [-1, {n_db - 1}]")
    return cols


def _mask_self(block: torch.Tensor, cols: torch.Tensor | None, value: float) -> torch.Tensor:
    """Copy of ``block`` with each row's own column set to ``value`` (the query is not a result)."""
    if cols is None:
        return block
    block = block.clone()
    rows = torch.nonzero(cols >= 0).reshape(-1)
    block[rows, cols[rows]] = value
    return block


def _check_rs(rs: Sequence[int] | np.ndarray, n_available: int) -> np.ndarray:
    r = np.asarray(rs, dtype=np.int64).reshape(-1)
    if r.size == 0 or (r < 1).any():
        raise ValueError(f"R grid must be non-empty and >= 1, got {list(r)}")
    if (np.diff(r) <= 0).any():
        raise ValueError(f"R grid must be strictly increasing, got {list(r)}")
    if r[-1] > n_available:
        raise ValueError(
            f"R={int(r[-1])} exceeds the {n_available} retrievable database items "
            "(database size minus the query itself); use default_r_grid(n_database)"
        )
    return r


def default_r_grid(n_database: int, r_max: int = 1000, n_points: int = 100) -> np.ndarray:
    """The R grid for NDCG@R / PCC@R: about ``n_points`` linear steps from 1 to min(r_max, N-1).

    Linear spacing makes :func:`curve_auc` a plain average over R (Gordo & Larlus report the area
    under curves plotted on a linear R axis); N-1 because the query itself is removed.
    """
    top = min(int(r_max), int(n_database) - 1)
    if top < 1:
        raise ValueError(f"database of {n_database} items leaves nothing to retrieve")
    return np.unique(np.round(np.linspace(1, top, num=min(n_points, top))).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Gordo & Larlus: NDCG@R, PCC@R, AUC


def query_curves(
    top_scores: torch.Tensor, top_rel: torch.Tensor, ideal_rel: torch.Tensor, rs: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query NDCG@R and PCC@R (nan where undefined) from the top-Rmax retrieved items.

    ``top_scores``/``top_rel``: predicted score and relevance of the retrieved items in rank order;
    ``ideal_rel``: the Rmax largest relevances of the whole database (self excluded), descending.
    Shared by the dense functions and the retrieval engine, so both give identical numbers.
    """
    r_max = int(rs[-1])
    pos = torch.as_tensor(rs - 1, dtype=torch.long)
    x = top_scores[:, :r_max].double()
    y = top_rel[:, :r_max].double()
    disc = 1.0 / torch.log2(torch.arange(r_max, dtype=torch.float64) + 2.0)
    dcg = torch.cumsum(y * disc, dim=1)[:, pos]
    idcg = torch.cumsum(ideal_rel[:, :r_max].double() * disc, dim=1)[:, pos]
    ndcg = torch.where(idcg > 0, dcg / torch.where(idcg > 0, idcg, 1.0), torch.nan)

    # Pearson via prefix sums, shifted by the first item to limit cancellation at small R.
    xs, ys = x - x[:, :1], y - y[:, :1]
    n = torch.as_tensor(rs, dtype=torch.float64)
    sx, sy = xs.cumsum(1)[:, pos], ys.cumsum(1)[:, pos]
    sxx, syy = (xs * xs).cumsum(1)[:, pos], (ys * ys).cumsum(1)[:, pos]
    sxy = (xs * ys).cumsum(1)[:, pos]
    cov = sxy - sx * sy / n
    vx = (sxx - sx * sx / n).clamp_min(0.0)
    vy = (syy - sy * sy / n).clamp_min(0.0)
    x_const = torch.cummax(x, 1).values[:, pos] == torch.cummin(x, 1).values[:, pos]
    y_const = torch.cummax(y, 1).values[:, pos] == torch.cummin(y, 1).values[:, pos]
    denom = torch.sqrt(vx * vy)
    defined = ~x_const & ~y_const & (denom > 0)
    pcc = torch.where(defined, cov / torch.where(defined, denom, 1.0), torch.nan).clamp(-1.0, 1.0)
    return ndcg, pcc


class CurveAccumulator:
    """Sums per-query curves chunk by chunk, skipping undefined (nan) entries per R."""

    def __init__(self, n_r: int) -> None:
        self.sums = {"ndcg": np.zeros(n_r), "pcc": np.zeros(n_r)}
        self.counts = {"ndcg": np.zeros(n_r, dtype=np.int64), "pcc": np.zeros(n_r, dtype=np.int64)}
        self.n_queries = 0

    def add(self, ndcg: torch.Tensor, pcc: torch.Tensor) -> None:
        for name, block in (("ndcg", ndcg), ("pcc", pcc)):
            arr = block.numpy()
            ok = np.isfinite(arr)
            self.sums[name] += np.where(ok, arr, 0.0).sum(0)
            self.counts[name] += ok.sum(0)
        self.n_queries += ndcg.shape[0]

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_queries": self.n_queries}
        for name in ("ndcg", "pcc"):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(
                    self.counts[name] > 0,
                    self.sums[name] / np.maximum(self.counts[name], 1),
                    np.nan,
                )
            out[f"{name}_n_defined"] = self.counts[name].copy()
        return out


def semantic_curves(
    pred_sim: ArrayLike,
    rel: ArrayLike,
    rs: Sequence[int] | np.ndarray,
    exclude_self: Any = None,
    chunk_size: int = 256,
) -> dict[str, Any]:
    """NDCG@R and PCC@R curves in one pass over dense [queries x database] matrices.

    NDCG@R = DCG@R / IDCG@R with DCG@R = sum_{i<=R} rel_i / log2(i+1) over the ranking by
    ``pred_sim``, and IDCG@R the same sum for the best possible ranking of the whole database
    (self excluded). Queries whose database has no positive relevance are undefined and skipped.
    PCC@R is Pearson's r between ``pred_sim`` and ``rel`` over the top-R retrieved items; it is
    undefined (skipped for that R) when R < 2 or either vector is constant over the top R.
    Relevance must be non-negative (tf-idf dot products, graded labels).
    """
    pred = _as_tensor(pred_sim)
    relt = _as_tensor(rel)
    if pred.shape != relt.shape or pred.dim() != 2:
        raise ValueError(
            f"pred_sim {tuple(pred.shape)} and rel {tuple(relt.shape)} must match, 2-d"
        )
    n_q, n_db = pred.shape
    _require_some(n_q, "queries")
    cols = _self_columns(exclude_self, n_q, n_db)
    n_avail = n_db - (1 if cols is not None and (cols >= 0).any() else 0)
    r = _check_rs(rs, n_avail)
    acc = CurveAccumulator(len(r))
    for start in range(0, n_q, chunk_size):
        sl = slice(start, start + chunk_size)
        c = None if cols is None else cols[sl]
        rel_block = relt[sl]
        if (rel_block < 0).any() or torch.isnan(rel_block).any():
            raise ValueError("relevance must be non-negative (and not NaN) for NDCG")
        ndcg, pcc = curves_for_block(pred[sl], rel_block, c, r)
        acc.add(ndcg, pcc)
    return acc.result()


def curves_for_block(
    score_block: torch.Tensor, rel_block: torch.Tensor, cols: torch.Tensor | None, rs: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank one dense block of queries and return their per-query NDCG/PCC curves."""
    r_max = int(rs[-1])
    scores = _mask_self(score_block, cols, float("-inf"))
    top_scores, top_idx = topk_deterministic(scores, r_max)
    top_rel = rel_block.gather(1, top_idx)
    ideal = torch.topk(_mask_self(rel_block, cols, float("-inf")), r_max, dim=1).values
    return query_curves(top_scores, top_rel, ideal, rs)


def ndcg_curve(
    pred_sim: ArrayLike, rel: ArrayLike, rs: Sequence[int] | np.ndarray, exclude_self: Any = None
) -> np.ndarray:
    """Mean NDCG@R over queries for each R (see :func:`semantic_curves` for the definition).

    ``exclude_self``: per query, the database column holding the query itself (-1 if absent).
    """
    return semantic_curves(pred_sim, rel, rs, exclude_self)["ndcg"]


def pcc_curve(
    pred_sim: ArrayLike, rel: ArrayLike, rs: Sequence[int] | np.ndarray, exclude_self: Any = None
) -> np.ndarray:
    """Mean PCC@R over queries for each R (see :func:`semantic_curves` for the definition)."""
    return semantic_curves(pred_sim, rel, rs, exclude_self)["pcc"]


def curve_auc(curve: Sequence[float] | np.ndarray, rs: Sequence[int] | np.ndarray) -> float:
    """Normalised area under a curve over R, in percent: 100 * trapz(curve, R) / (R_max - R_min).

    A curve equal to 1 everywhere (the text oracle's NDCG, and its PCC wherever defined) scores
    exactly 100. Points where the curve is undefined (nan) are dropped and the area is normalised
    by the span of the remaining R; a single point gives 100 * value; nothing defined gives nan.
    """
    y = np.asarray(curve, dtype=np.float64).reshape(-1)
    x = np.asarray(rs, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"curve has {y.size} points but the R grid has {x.size}")
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if y.size == 0:
        return float("nan")
    if y.size == 1:
        return float(100.0 * y[0])
    return float(100.0 * np.trapezoid(y, x) / (x[-1] - x[0]))


# ---------------------------------------------------------------------------------------------
# Gordo & Larlus: user-study agreement


def _pair_scores(sim_fn_or_scores: Any, triplets: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    if callable(sim_fn_or_scores):
        fn: Callable[[str, str], float] = sim_fn_or_scores
        s_a = np.array([float(fn(t.query, t.a)) for t in triplets])
        s_b = np.array([float(fn(t.query, t.b)) for t in triplets])
        return s_a, s_b
    s_a, s_b = (np.asarray(_as_tensor(s).double()).reshape(-1) for s in sim_fn_or_scores)
    if s_a.size != len(triplets) or s_b.size != len(triplets):
        raise ValueError(
            f"score arrays have {s_a.size}/{s_b.size} entries for {len(triplets)} triplets"
        )
    return s_a, s_b


def user_agreement(sim_fn_or_scores: Any, triplets: Sequence[Any]) -> float:
    """Agreement of a similarity with the user study, in percent (Gordo & Larlus, Table 1/2 "US").

    The method picks ``a`` if s(q, a) > s(q, b), ``b`` if smaller; a tie earns half credit. For a
    triplet with votes (o1, o2, o3) for (a, b, neither), the per-triplet score is o_pick/(o1 + o2);
    the result is the mean of these weighted by w = (o1 + o2)/(o1 + o2 + o3), i.e.
    sum(w * s) / sum(w), over triplets with o1 + o2 >= 1. Normalising by sum(w) is what makes
    random picks score 50 in expectation.

    ``sim_fn_or_scores``: a callable (query_id, candidate_id) -> similarity, or a pair of arrays
    (s_qa, s_qb) aligned with ``triplets`` (``capbench.data.user_study.Triplet``).
    """
    _require_some(len(triplets), "triplets")
    s_a, s_b = _pair_scores(sim_fn_or_scores, triplets)
    nan = np.isnan(s_a) | np.isnan(s_b)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        t = triplets[i]
        raise ValueError(
            f"similarity of triplet {i} (query {t.query!r}, a {t.a!r}, b {t.b!r}) is NaN: "
            "it is neither a pick nor a tie"
        )
    counts = np.array([t.counts for t in triplets], dtype=np.float64).reshape(-1, 3)
    o1, o2, o3 = counts.T
    decided = (o1 + o2) >= 1
    if not decided.any():
        raise ValueError("no triplet has a vote for a or b; user agreement is undefined")
    picked = np.where(s_a > s_b, o1, np.where(s_a < s_b, o2, 0.5 * (o1 + o2)))
    o1, o2, o3, picked = o1[decided], o2[decided], o3[decided], picked[decided]
    w = (o1 + o2) / (o1 + o2 + o3)
    s = picked / (o1 + o2)
    return float(100.0 * np.sum(w * s) / np.sum(w))


def inter_annotator_agreement(votes_or_triplets: Sequence[Any]) -> tuple[float, float]:
    """Leave-one-user-out agreement (Gordo & Larlus, section 3), mean and std over users, in %.

    For a user choosing i in {a, b} on a triplet with counts (o1, o2, o3) (the user included), the
    score is s = w (o_i - 1)/(o1 + o2 - 1) with w = (o1 + o2 - 1)/(o1 + o2 + o3 - 1), computed only
    where at least one other user chose an image. Each user's score is the plain average of their
    per-triplet scores, as the paper states; the std is the population std (ddof=0) over users.

    Accepts ``Triplet`` objects or plain vote mappings (annotator id -> "a" | "b" | "neither").
    """
    per_user: dict[str, list[float]] = {}
    for item in votes_or_triplets:
        votes: Mapping[str, str] = item.votes if hasattr(item, "votes") else item
        choices = list(votes.values())
        o = {c: choices.count(c) for c in ("a", "b", "neither")}
        unknown = set(choices) - set(o)
        if unknown:
            raise ValueError(f"unknown vote(s) {sorted(unknown)}; expected a, b or neither")
        n_img, n_all = o["a"] + o["b"], o["a"] + o["b"] + o["neither"]
        for user, choice in votes.items():
            if choice == "neither" or n_img - 1 < 1:
                continue
            w = (n_img - 1) / (n_all - 1)
            per_user.setdefault(user, []).append(w * (o[choice] - 1) / (n_img - 1))
    if not per_user:
        raise ValueError("no user has a comparable decision; inter-annotator agreement undefined")
    scores = np.array([100.0 * np.mean(v) for v in per_user.values()])
    return float(scores.mean()), float(scores.std(ddof=0))


# ---------------------------------------------------------------------------------------------
# COCO / Flickr Recall@K


def first_hit_rank(sim: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """0-based rank of the first ground-truth item per row, ranking by (score desc, index asc)."""
    if not gt.any(dim=1).all():
        bad = int(torch.nonzero(~gt.any(dim=1))[0])
        raise ValueError(f"query {bad} has no ground-truth item")
    if torch.isnan(sim).any():
        raise ValueError("similarities contain NaN")
    neg_inf = torch.tensor(float("-inf"), dtype=sim.dtype)
    best = torch.where(gt, sim, neg_inf).max(dim=1, keepdim=True).values
    at_best = gt & (sim == best)
    first_gt = at_best.int().argmax(dim=1, keepdim=True)  # lowest index among tied gt items
    cols = torch.arange(sim.shape[1]).unsqueeze(0)
    before = (sim > best) | ((sim == best) & (cols < first_gt))
    return before.sum(dim=1)


def _gt_mask(gt: Any, n_rows: int, n_cols: int) -> torch.Tensor:
    if isinstance(gt, np.ndarray | torch.Tensor) and np.ndim(gt) == 2:
        mask = _as_tensor(gt).bool()
        if tuple(mask.shape) != (n_rows, n_cols):
            raise ValueError(f"gt mask {tuple(mask.shape)} does not match sim {(n_rows, n_cols)}")
        return mask
    if len(gt) != n_rows:
        raise ValueError(f"gt has {len(gt)} entries for {n_rows} queries")
    mask = torch.zeros((n_rows, n_cols), dtype=torch.bool)
    for i, items in enumerate(gt):
        idx = [items] if isinstance(items, int | np.integer) else list(items)
        mask[i, idx] = True
    return mask


def recall_at_k(sim: ArrayLike, gt: Any, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """COCO/Flickr Recall@K in percent: share of queries with ANY ground-truth item in the top K.

    This is a hit rate, not torchmetrics' ``RetrievalRecall`` (fraction of the relevant items
    found). ``gt``: a boolean [queries x items] mask, or per query an index or list of indices.
    Use it for image->text (several captions per image) and text->image (one image) alike.
    """
    s = _as_tensor(sim)
    if s.dim() != 2:
        raise ValueError(f"sim must be 2-d [queries x items], got shape {tuple(s.shape)}")
    _require_some(s.shape[0], "queries")
    ranks = first_hit_rank(s, _gt_mask(gt, *s.shape))
    return {int(k): float(100.0 * (ranks < k).double().mean()) for k in ks}


def rsum(metrics: Mapping[str, float]) -> float:
    """Sum of all Recall@K values of both directions (keys ``i2t_r*`` and ``t2i_r*``)."""
    return float(sum(v for k, v in metrics.items() if k.startswith(("i2t_r", "t2i_r"))))


def image_text_recall(
    img_emb: ArrayLike,
    txt_emb: ArrayLike,
    txt_image: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Both directions of Recall@K (percent) and rsum from embeddings, in query chunks.

    ``txt_image[j]`` is the image index of caption j. Similarity is the dot product (pass
    L2-normalised embeddings for cosine). Returns ``i2t_r{K}``, ``t2i_r{K}`` and ``rsum``.
    """
    img = _as_tensor(img_emb).float()
    txt = _as_tensor(txt_emb).float()
    owner = _as_tensor(txt_image).long().reshape(-1)
    if owner.numel() != txt.shape[0]:
        raise ValueError(f"txt_image has {owner.numel()} entries for {txt.shape[0]} captions")
    n_img = img.shape[0]
    _require_some(n_img, "images")
    _require_some(txt.shape[0], "captions")
    if ((owner < 0) | (owner >= n_img)).any():
        raise ValueError(f"txt_image must index the {n_img} images")
    i2t, t2i = [], []
    for s in range(0, n_img, chunk_size):
        block = img[s : s + chunk_size] @ txt.T
        gt = owner.unsqueeze(0) == torch.arange(s, s + block.shape[0]).unsqueeze(1)
        i2t.append(first_hit_rank(block, gt))
    for s in range(0, txt.shape[0], chunk_size):
        block = txt[s : s + chunk_size] @ img.T
        gt = torch.arange(n_img).unsqueeze(0) == owner[s : s + block.shape[0]].unsqueeze(1)
        t2i.append(first_hit_rank(block, gt))
    r_i2t, r_t2i = torch.cat(i2t), torch.cat(t2i)
    out = {f"i2t_r{k}": float(100.0 * (r_i2t < k).double().mean()) for k in ks}
    out.update({f"t2i_r{k}": float(100.0 * (r_t2i < k).double().mean()) for k in ks})
    out["rsum"] = rsum(out)
    return out


def coco_1k_5k(
    img_emb: ArrayLike,
    txt_emb: ArrayLike,
    txt_image: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    n_folds: int = 5,
    fold_size: int = 1000,
) -> dict[str, dict[str, float]]:
    """COCO protocols: ``5k`` ranks against all test images; ``1k`` is the mean over 5 folds of
    1000 consecutive images (and their captions) each, every metric (rsum included) averaged."""
    img = _as_tensor(img_emb).float()
    txt = _as_tensor(txt_emb).float()
    owner = _as_tensor(txt_image).long().reshape(-1)
    if img.shape[0] < n_folds * fold_size:
        raise ValueError(
            f"{img.shape[0]} images cannot make {n_folds} folds of {fold_size} (COCO 1k protocol)"
        )
    folds = []
    for f in range(n_folds):
        lo, hi = f * fold_size, (f + 1) * fold_size
        keep = (owner >= lo) & (owner < hi)
        folds.append(image_text_recall(img[lo:hi], txt[keep], owner[keep] - lo, ks))
    one_k = {k: float(np.mean([fold[k] for fold in folds])) for k in folds[0]}
    return {"1k": one_k, "5k": image_text_recall(img, txt, owner, ks)}


# ---------------------------------------------------------------------------------------------
# Mopuri: graded nDCG@K


def _top_references(s: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the first ``k`` columns of the ranking that puts every ``valid`` column (by
    score desc, then index) before every other one.

    Masking the others with -inf is exact except where a valid column itself scores -inf
    (it would tie with the masked ones and lose to a lower index); those rows, found from the
    k-th selected score, are ranked again by two stable sorts.
    """
    masked = s.masked_fill(~valid, float("-inf"))
    vals, idx = topk_deterministic(masked, k)
    redo = (vals[:, -1] == float("-inf")) & (~valid).any(dim=1)
    if redo.any():
        rows = torch.nonzero(redo).reshape(-1)
        by_score = torch.sort(masked[rows], dim=1, descending=True, stable=True).indices
        first = torch.sort(
            valid[rows].gather(1, by_score).int(), dim=1, descending=True, stable=True
        )
        idx = idx.clone()
        idx[rows] = by_score.gather(1, first.indices)[:, :k]
    return idx


def graded_ndcg_at_k(
    sim: ArrayLike, rel: ArrayLike, ks: Sequence[int], exclude_self: Any = None
) -> dict[int, float]:
    """Mopuri et al. nDCG@K (fraction), mean over queries.

    DCG@K = sum_{i<=K} (2^rel_i - 1)/log2(i+1) over the ranking by ``sim`` restricted to the
    references that have a ground-truth relevance for the query (``rel`` is nan elsewhere: no
    distractors), the query itself removed; normalised by the ideal DCG@K of the same references.
    When K exceeds a query's reference count the sum stops at the last reference.

    Grades must be finite and >= 0 (±inf is a ``ValueError``, not "not judged"); a reference's
    ``sim`` must not be NaN. A reference with ``sim = -inf`` is ranked last among the references,
    never behind a non-reference (the ranking is over references only).
    """
    s = _as_tensor(sim).double()
    r = _as_tensor(rel).double()
    if s.shape != r.shape or s.dim() != 2:
        raise ValueError(f"sim {tuple(s.shape)} and rel {tuple(r.shape)} must match, 2-d")
    n_q, n_db = s.shape
    _require_some(n_q, "queries")
    _require_some(n_db, "database items")
    if torch.isinf(r).any():
        q, j = _first_where(torch.isinf(r))
        raise ValueError(
            f"rel[{q}, {j}] = {float(r[q, j])}: grades must be finite (NaN marks 'not judged')"
        )
    if (r < 0).any():
        q, j = _first_where(r < 0)
        raise ValueError(f"rel[{q}, {j}] = {float(r[q, j])}: grades must be >= 0")
    cols = _self_columns(exclude_self, n_q, n_db)
    valid = ~torch.isnan(r)
    if cols is not None:
        valid = ~_mask_self(~valid, cols, True)
    if torch.isnan(s[valid]).any():
        q, j = _first_where(valid & torch.isnan(s))
        raise ValueError(f"sim[{q}, {j}] is NaN for a judged reference: its rank is undefined")
    gains = torch.where(valid, torch.exp2(torch.where(valid, r, 0.0)) - 1.0, 0.0)
    k_list = [int(k) for k in ks]
    if not k_list or min(k_list) < 1:
        raise ValueError(f"ks must be >= 1, got {k_list}")
    k_max = min(max(k_list), n_db)
    idx = _top_references(s, valid, k_max)
    disc = 1.0 / torch.log2(torch.arange(k_max, dtype=torch.float64) + 2.0)
    dcg = torch.cumsum(gains.gather(1, idx) * disc, 1)
    idcg = torch.cumsum(torch.topk(gains, k_max, dim=1).values * disc, 1)
    out = {}
    for k in k_list:
        d, i = dcg[:, min(k, k_max) - 1], idcg[:, min(k, k_max) - 1]
        ok = i > 0
        out[k] = float((d[ok] / i[ok]).mean()) if ok.any() else float("nan")
    return out


# ---------------------------------------------------------------------------------------------
# Reed: zero-shot top-1 and AP@50


def class_text_embeddings(
    caption_emb: ArrayLike, caption_class: ArrayLike, n_classes: int | None = None
) -> torch.Tensor:
    """Per-class text embedding = mean of the embeddings of all its captions (Reed et al.)."""
    emb = _as_tensor(caption_emb).double()
    cls = _as_tensor(caption_class).long().reshape(-1)
    if cls.numel() != emb.shape[0]:
        raise ValueError(f"caption_class has {cls.numel()} entries for {emb.shape[0]} captions")
    _require_some(cls.numel(), "captions")
    bad = cls < 0
    if n_classes is not None:
        bad |= cls >= n_classes
    if bad.any():
        (i,) = _first_where(bad)
        raise ValueError(f"caption_class[{i}] = {int(cls[i])} is not a class index")
    n = int(cls.max()) + 1 if n_classes is None else n_classes
    counts = torch.bincount(cls, minlength=n).double()
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).reshape(-1).tolist()
        raise ValueError(f"classes {missing[:10]} have no caption to average")
    sums = torch.zeros((n, emb.shape[1]), dtype=torch.float64).index_add_(0, cls, emb)
    return (sums / counts.unsqueeze(1)).to(_as_tensor(caption_emb).dtype)


def _class_labels(labels: ArrayLike, shape: tuple[int, ...]) -> torch.Tensor:
    """``labels`` as a long vector, one per image, each the index of a class row: a label with
    no class row would count as a miss without ever being predicted."""
    n_images, n_classes = shape
    _require_some(n_images, "images")
    _require_some(n_classes, "class embeddings")
    y = _as_tensor(labels).long().reshape(-1)
    if y.numel() != n_images:
        raise ValueError(f"labels has {y.numel()} entries for {n_images} images")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        (i,) = _first_where(bad)
        raise ValueError(f"labels[{i}] = {int(y[i])} has no class row: expected 0..{n_classes - 1}")
    return y


def zero_shot_top1(img_emb: ArrayLike, class_txt_emb: ArrayLike, labels: ArrayLike) -> float:
    """Per-class-averaged top-1 accuracy (percent) of argmax_c <image, class text embedding>.

    ``labels`` index rows of ``class_txt_emb``; ties go to the lower class index. The average runs
    over the classes present in ``labels``.
    """
    scores = _as_tensor(img_emb).double() @ _as_tensor(class_txt_emb).double().T
    y = _class_labels(labels, scores.shape)
    _, pred = topk_deterministic(scores, 1)
    correct = (pred[:, 0] == y).double()
    classes = torch.unique(y)
    return float(100.0 * torch.stack([correct[y == c].mean() for c in classes]).mean())


def ap_at_50(img_emb: ArrayLike, class_txt_emb: ArrayLike, labels: ArrayLike, k: int = 50) -> float:
    """Reed's AP@50 (percent): per class query, share of the top-k images of that class, averaged
    over the classes present in ``labels``. Ties go to the lower image index."""
    scores = _as_tensor(class_txt_emb).double() @ _as_tensor(img_emb).double().T
    y = _class_labels(labels, scores.shape[::-1])
    classes = torch.unique(y)
    _, idx = topk_deterministic(scores[classes], min(k, scores.shape[1]))
    return float(100.0 * (y[idx] == classes.unsqueeze(1)).double().mean())


# ---------------------------------------------------------------------------------------------
# VOC07 classification mAP


def _pr_at_thresholds(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score threshold (ties form one operating point)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order].astype(np.float64)
    # not np.diff(s) != 0: inf - inf is nan, which would split a tie of infinite scores
    last_of_group = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tp = np.cumsum(y)[last_of_group]
    return tp / (last_of_group + 1), tp / positive.sum()


def voc07_map(scores: ArrayLike, labels: ArrayLike, difficult: ArrayLike | None = None) -> dict:
    """Mean over classes of AP (percent), difficult images excluded per class.

    Returns ``map`` (standard, non-interpolated AP = sum (R_n - R_{n-1}) P_n over distinct score
    thresholds, as scikit-learn), ``map_11pt`` (VOC2007 devkit: mean over t in {0, .1, ..., 1}
    of the max precision at recall >= t), ``map_interp`` (all-points interpolated AP = sum
    (R_n - R_{n-1}) max_{m >= n} P_m: the VOC2010 devkit's, and the one Goyal et al. 2019's
    self-supervision benchmark reports for VOC07, ``calculate_ap`` in
    facebookresearch/fair_self_supervision_benchmark tools/svm/svm_helper.py), and each per
    class. Tied scores form one operating point in all three, so the result never depends on
    sort order (Goyal et al.'s code takes tied images one by one in argsort order). Classes
    without positives are nan and left out of the means. ``labels`` > 0 are positives.
    """
    s = np.asarray(_as_tensor(scores).double())
    y = np.asarray(_as_tensor(labels)) > 0
    hard = np.zeros_like(y) if difficult is None else np.asarray(_as_tensor(difficult)).astype(bool)
    if s.shape != y.shape or s.shape != hard.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape}, labels {y.shape}, difficult {hard.shape} must match")
    _require_some(s.shape[0], "images")
    _require_some(s.shape[1], "classes")
    if np.isnan(s).any():
        i, c = (int(v) for v in np.argwhere(np.isnan(s))[0])
        raise ValueError(f"scores[{i}, {c}] is NaN: it has no rank for class {c}")
    ap, ap11 = np.full(s.shape[1], np.nan), np.full(s.shape[1], np.nan)
    ap_interp = np.full(s.shape[1], np.nan)
    for c in range(s.shape[1]):
        keep = ~hard[:, c]
        if not y[keep, c].any():
            continue
        prec, rec = _pr_at_thresholds(s[keep, c], y[keep, c])
        ap[c] = 100.0 * np.sum(np.diff(np.r_[0.0, rec]) * prec)
        envelope = np.maximum.accumulate(prec[::-1])[::-1]  # max precision at recall >= R_n
        ap_interp[c] = 100.0 * np.sum(np.diff(np.r_[0.0, rec]) * envelope)
        ap11[c] = 100.0 * np.mean(
            [prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in np.arange(11) / 10.0]
        )
    return {
        "map": float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan"),
        "map_11pt": float(np.nanmean(ap11)) if np.isfinite(ap11).any() else float("nan"),
        "map_interp": float(np.nanmean(ap_interp))
        if np.isfinite(ap_interp).any()
        else float("nan"),
        "ap_per_class": ap.tolist(),
        "ap_11pt_per_class": ap11.tolist(),
        "ap_interp_per_class": ap_interp.tolist(),
    }
