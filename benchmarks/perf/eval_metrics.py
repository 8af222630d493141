"""NDCG@R / PCC@R curves (Gordo & Larlus protocol, 1k queries x 10k database) vs named baselines.

Times, on the same data (queries are the first 1000 database items; each query's own column is
removed):

* ``capbench``: :func:`capbench.eval.metrics.semantic_curves`, both the NDCG and the PCC curve
  over the whole R grid (best of ``--repeat``).
* ``torchmetrics``: ``RetrievalNormalizedDCG(top_k=R)`` with ``indexes``, one call per R,
  NDCG only.
* ``sklearn``: ``ndcg_score(rel, pred, k=R)``, one call per R, NDCG only.

The baselines compute one R per call, so they are timed on ``--baseline-rs`` evenly spaced R
values of the grid and scaled linearly to the full grid (stated in the output). They also
compute NDCG only, while capbench's time includes PCC, so the ratios are conservative. The
values are cross-checked on the timed R. **Gate: capbench >= 10x faster than both.**

Run: ``python benchmarks/perf/eval_metrics.py [--threads 2]``; exits 1 below ``--min-speedup``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.metrics import ndcg_score
from torchmetrics.retrieval import RetrievalNormalizedDCG

from capbench.eval.metrics import curve_auc, default_r_grid, semantic_curves
from capbench.eval.retrieval import l2_normalize, semantic_retrieval_curves


def _data(n_q: int, n_db: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal((n_q, n_db), dtype=np.float32)
    rel = np.maximum(rng.standard_normal((n_q, n_db), dtype=np.float32) - 1.0, 0.0)
    rel += 0.3 * np.maximum(pred, 0.0)  # some signal, so NDCG is not flat
    return pred, rel


def _without_self(x: np.ndarray) -> np.ndarray:
    n_q, n_db = x.shape
    keep = np.ones_like(x, dtype=bool)
    keep[np.arange(n_q), np.arange(n_q)] = False
    return x[keep].reshape(n_q, n_db - 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--database", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-rs", type=int, default=3)
    ap.add_argument("--min-speedup", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    pred, rel = _data(args.queries, args.database, args.seed)
    rs = default_r_grid(args.database)
    self_cols = np.arange(args.queries)
    print(f"data: {args.queries} queries x {args.database} database, R grid of {len(rs)} values "
          f"(1..{rs[-1]}), torch threads {args.threads}")  # fmt: skip

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = semantic_curves(pred, rel, rs, exclude_self=self_cols)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)
    print(f"capbench semantic_curves (NDCG+PCC, {len(rs)} R): {t_ours:.3f} s "
          f"(NDCG AUC {curve_auc(out['ndcg'], rs):.2f}, PCC AUC {curve_auc(out['pcc'], rs):.2f})")  # fmt: skip

    timed = rs[np.linspace(0, len(rs) - 1, args.baseline_rs).round().astype(int)]
    p_ex, r_ex = _without_self(pred), _without_self(rel)
    preds_t, target_t = torch.from_numpy(p_ex).reshape(-1), torch.from_numpy(r_ex).reshape(-1)
    indexes = torch.arange(args.queries).repeat_interleave(args.database - 1)
    t_tm, t_sk = 0.0, 0.0
    for r in timed:
        ours = out["ndcg"][int(np.searchsorted(rs, r))]
        t0 = time.perf_counter()
        tm = float(RetrievalNormalizedDCG(top_k=int(r))(preds_t, target_t, indexes=indexes))
        t_tm += time.perf_counter() - t0
        t0 = time.perf_counter()
        sk = float(ndcg_score(r_ex, p_ex, k=int(r)))
        t_sk += time.perf_counter() - t0
        print(f"  R={int(r):4d}: NDCG capbench {ours:.6f} torchmetrics {tm:.6f} sklearn {sk:.6f}")
        if not (abs(ours - tm) < 1e-4 and abs(ours - sk) < 1e-4):
            print("  values disagree with the baselines", file=sys.stderr)
            return 1
    scale = len(rs) / len(timed)
    t_tm_full, t_sk_full = t_tm * scale, t_sk * scale
    print(f"baselines timed on {len(timed)} of the {len(rs)} R values, scaled x{scale:.1f} "
          "(one call per R; NDCG only)")  # fmt: skip
    print(f"torchmetrics RetrievalNormalizedDCG: {t_tm_full:.2f} s (est. for {len(rs)} R)")
    print(f"sklearn ndcg_score:                  {t_sk_full:.2f} s (est. for {len(rs)} R)")
    ratio_tm, ratio_sk = t_tm_full / t_ours, t_sk_full / t_ours
    print(f"RATIO torchmetrics/capbench = {ratio_tm:.1f}x")
    print(f"RATIO sklearn/capbench      = {ratio_sk:.1f}x")

    g = torch.Generator().manual_seed(args.seed)
    db = l2_normalize(torch.randn(args.database, 512, generator=g))
    relt = torch.from_numpy(rel)
    t0 = time.perf_counter()
    semantic_retrieval_curves(db[: args.queries], db, lambda p: relt[p], rs, exclude_self=self_cols)
    print(f"(context) semantic_retrieval_curves from 512-d embeddings, exact search included "
          f"(torch backend): {time.perf_counter() - t0:.3f} s")  # fmt: skip

    ok = min(ratio_tm, ratio_sk) >= args.min_speedup
    print("PASS" if ok else f"FAIL: below {args.min_speedup}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
