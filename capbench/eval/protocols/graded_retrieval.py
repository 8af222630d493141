"""Graded-relevance retrieval: nDCG@K on rPascal / rImageNet style benchmarks (Mopuri et al. 2017).

Each query has a list of judged references (grades 0..3, the median of several annotators).
References are ranked by the Euclidean distance of L2-normalised features, which orders them
exactly as cosine similarity does, so :func:`similarity` returns cosine and the ranking is the
authors'. nDCG@K (gain ``2^rel - 1``, no distractors: only the query's judged references are
ranked, the query itself is never among them) is ``capbench.eval.metrics.graded_ndcg_at_k``.

The authors' protocol is 5-fold over the 50 queries (10 test queries per fold, the siamese
net trained on the other 40); :func:`query_folds` gives those folds and :func:`score_folds`
averages the per-fold nDCG. A representation that is not trained on the benchmark (a CNN
feature, a caption feature, any encoder of the cross-method suite) is scored on every query at
once: with equal folds the mean over folds equals the mean over queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.data.records import CaptionedImage
from capbench.eval.metrics import graded_ndcg_at_k
from capbench.eval.protocols._common import resolve_dataset_root

DATA_CARD = "data_cards/graded_retrieval.md"
# eval_retrieval_copy2.m (mopurikreddy/strong-supervision): K = 5, 10, 20, 30, ..., 100
PAPER_KS: tuple[int, ...] = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: which graded benchmark and layout."""

    name: str = "graded_retrieval"  # the reader (layouts: capbench JSON or rPascal median_annot)
    root: str = "graded_retrieval"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    reader_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section."""

    ks: tuple[int, ...] = PAPER_KS
    folds: int = 5  # siamese_data_prep.py: 5 folds of 10 test queries over the 50


@dataclass
class GradedData:
    """Queries, references and the (Q, R) grade matrix (NaN = reference not judged for it)."""

    queries: list[CaptionedImage]
    references: list[CaptionedImage]
    grades: np.ndarray
    dataset: dict[str, Any]

    @property
    def judged_per_query(self) -> np.ndarray:
        return (~np.isnan(self.grades)).sum(1)


def dataset_root(data: DataConfig, data_root: Path) -> Path:
    """``data.root`` (absolute, or under ``data_root``); a missing folder names the data card."""
    return resolve_dataset_root(data.root, data_root, data.name, DATA_CARD)


def build_graded_data(
    records: Sequence[CaptionedImage], dataset: dict[str, Any] | None = None
) -> GradedData:
    """Split reader records into queries (with ``meta["relevance"]``) and references."""
    queries = [r for r in records if r.split == "query"]
    references = [r for r in records if r.split == "reference"]
    if not queries or not references:
        raise ValueError(
            f"a graded benchmark needs queries and references, got {len(queries)} queries and "
            f"{len(references)} references"
        )
    column = {r.image_id: j for j, r in enumerate(references)}
    grades = np.full((len(queries), len(references)), np.nan)
    for i, q in enumerate(queries):
        for rid, grade in q.meta.get("relevance", {}).items():
            if rid in column:  # a judged reference whose image was skipped is not ranked
                grades[i, column[rid]] = float(grade)
    empty = [q.image_id for q, n in zip(queries, (~np.isnan(grades)).sum(1)) if n == 0]
    if empty:
        raise ValueError(f"queries without any judged reference: {empty[:5]}")
    return GradedData(queries, references, grades, dict(dataset or {}))


def load_graded_data(data: DataConfig, data_root: Path) -> GradedData:
    """Read the benchmark named by ``data`` and :func:`build_graded_data`."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    root = dataset_root(data, data_root)
    records = read(data.name, root, None, **data.reader_options)
    info = {"name": data.name, "root": str(root), "fingerprint": dataset_fingerprint(root)}
    return build_graded_data(records, info)


def query_folds(n_queries: int, folds: int) -> list[np.ndarray]:
    """Test-query indices of each fold: contiguous blocks in query order, as the authors' split
    (their fold 1 tests queries 41-50, fold 2 queries 1-10, ...: the same blocks)."""
    if folds < 1 or folds > n_queries:
        raise ValueError(f"folds must be in 1..{n_queries} (the number of queries), got {folds}")
    return [np.asarray(b, dtype=np.int64) for b in np.array_split(np.arange(n_queries), folds)]


def similarity(query_feats: Any, ref_feats: Any) -> np.ndarray:
    """(Q, R) cosine similarity: the ranking of the Euclidean distance of L2-normalised features."""
    q = torch.nn.functional.normalize(torch.as_tensor(np.asarray(query_feats)).double(), dim=1)
    r = torch.nn.functional.normalize(torch.as_tensor(np.asarray(ref_feats)).double(), dim=1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query features are {q.shape[1]}-d but references {r.shape[1]}-d")
    return (q @ r.T).numpy()


def summarize(ndcg: dict[int, float]) -> dict[str, float]:
    """``ndcg@K`` per K plus ``ndcg_mean`` (the mean over K: one number per representation)."""
    out = {f"ndcg@{k}": float(v) for k, v in sorted(ndcg.items())}
    out["ndcg_mean"] = float(np.mean(list(ndcg.values())))
    return out


def score_similarity(
    sim: np.ndarray, data: GradedData, ks: Sequence[int], queries: np.ndarray | None = None
) -> dict[str, float]:
    """nDCG@K of a (Q, R) similarity over ``queries`` (indices; default all)."""
    rows = np.arange(len(data.queries)) if queries is None else np.asarray(queries)
    return summarize(graded_ndcg_at_k(sim[rows], data.grades[rows], ks))


def score_features(
    query_feats: Any, ref_feats: Any, data: GradedData, ks: Sequence[int] = PAPER_KS
) -> dict[str, float]:
    """nDCG@K of a fixed representation over every query (the suite's column)."""
    return score_similarity(similarity(query_feats, ref_feats), data, ks)


def score_folds(per_fold: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean over folds of each ``ndcg@K`` (the authors' reported number), plus its std."""
    if not per_fold:
        raise ValueError("no fold to average")
    keys = per_fold[0].keys()
    out = {k: float(np.mean([f[k] for f in per_fold])) for k in keys}
    out["ndcg_mean_fold_std"] = float(np.std([f["ndcg_mean"] for f in per_fold]))
    return out


def random_ranking_ndcg(
    data: GradedData, ks: Sequence[int] = PAPER_KS, draws: int = 20, seed: int = 0
) -> dict[str, float]:
    """The chance level: nDCG@K of uniformly random rankings, mean of ``draws`` draws."""
    rng = np.random.default_rng(seed)
    runs = [score_similarity(rng.random(data.grades.shape), data, ks) for _ in range(max(1, draws))]
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
