"""Independent reference implementations, written as plain Python loops (no shared code with
capbench.eval): ranking via ``sorted`` on (-score, index) keys, Pearson via scipy, AP by
enumerating thresholds. Slow on purpose; used on small inputs only."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import pearsonr


def ranking(scores, skip=None):
    """Indices sorted by score desc, lower index first on ties; ``skip`` left out."""
    return sorted((j for j in range(len(scores)) if j != skip), key=lambda j: (-scores[j], j))


def gordo_curves(pred, rel, rs, exclude=None):
    """Mean NDCG@R and PCC@R over queries, undefined entries skipped, loop by loop."""
    ndcg_sum, ndcg_n = [0.0] * len(rs), [0] * len(rs)
    pcc_sum, pcc_n = [0.0] * len(rs), [0] * len(rs)
    for q in range(len(pred)):
        skip = None if exclude is None or exclude[q] < 0 else int(exclude[q])
        order = ranking(list(pred[q]), skip)
        ideal = sorted((rel[q][j] for j in range(len(rel[q])) if j != skip), reverse=True)
        for t, r in enumerate(rs):
            dcg = sum(rel[q][order[i]] / math.log2(i + 2) for i in range(r))
            idcg = sum(ideal[i] / math.log2(i + 2) for i in range(r))
            if idcg > 0:
                ndcg_sum[t] += dcg / idcg
                ndcg_n[t] += 1
            xs = [float(pred[q][j]) for j in order[:r]]
            ys = [float(rel[q][j]) for j in order[:r]]
            if r >= 2 and len(set(xs)) > 1 and len(set(ys)) > 1:
                pcc_sum[t] += pearsonr(xs, ys)[0]
                pcc_n[t] += 1
    nd = [s / n if n else float("nan") for s, n in zip(ndcg_sum, ndcg_n)]
    pc = [s / n if n else float("nan") for s, n in zip(pcc_sum, pcc_n)]
    return np.array(nd), np.array(pc)


def hit_recall(sim, gt_sets, k):
    """Percent of queries with a ground-truth item among the first k of the ranking."""
    hits = [any(j in gt_sets[q] for j in ranking(list(sim[q]))[:k]) for q in range(len(sim))]
    return 100.0 * sum(hits) / len(hits)


def voc_ap_11pt(scores, positive):
    """VOC07 11-point AP with tied scores as one operating point, by enumerating thresholds."""
    n_pos = sum(positive)
    points = []
    for thr in sorted(set(scores), reverse=True):
        sel = [p for s, p in zip(scores, positive) if s >= thr]
        points.append((sum(sel) / n_pos, sum(sel) / len(sel)))
    total = 0.0
    for t in range(11):
        precs = [p for rec, p in points if rec >= t / 10]
        total += max(precs) if precs else 0.0
    return 100.0 * total / 11


def graded_ndcg(sim, rel, k, exclude=None):
    """Mopuri nDCG@K: rank each query's judged references (rel not nan, not the query itself)
    by (-sim, index), gain 2^rel - 1; mean over queries with a positive ideal DCG."""
    values = []
    for q in range(len(sim)):
        skip = None if exclude is None or exclude[q] < 0 else int(exclude[q])
        refs = [j for j in range(len(sim[q])) if not math.isnan(rel[q][j]) and j != skip]
        order = sorted(refs, key=lambda j: (-sim[q][j], j))  # -(-inf) = inf: last
        gains = [2.0 ** rel[q][j] - 1 for j in order][:k]
        ideal = sorted((2.0 ** rel[q][j] - 1 for j in refs), reverse=True)[:k]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        if idcg > 0:
            values.append(dcg / idcg)
    return sum(values) / len(values) if values else float("nan")
