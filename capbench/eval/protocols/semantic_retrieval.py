"""The semantic-retrieval protocol of Gordo & Larlus 2017 (section 6.1), for any embedding.

Relevance is the dot product of L2-normalised stemmed tf-idf vectors of the images' region
phrases, vocabulary and idf fitted on the training split. ``n_queries`` queries are drawn with a
fixed seed from a database of ``n_database`` images of the evaluation split (the same draw for
every row), each query removed from its own results; NDCG@R and PCC@R over the R grid, their
AUCs, and the agreement with a user study's triplet choices (US) when one is given.

Embeddings are scored by the shared exact search (:func:`capbench.eval.retrieval.
semantic_retrieval_curves`, faiss on a GPU); text proxies given as sparse tf-idf rows (the text
oracle, object or caption tf-idf) by a chunked sparse product with the same curve code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from capbench.data.records import CaptionedImage
from capbench.eval.protocols._common import resolve_dataset_root

DATA_CARD = "data_cards/visual_genome.md"

Curves = dict[str, dict[str, list[float]]]
Scores = tuple[dict[str, float], Curves, int]


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: where the protocol's dataset is."""

    name: str = "visual_genome"  # the reader (Visual Genome v1.2 layout, section 6.1)
    root: str = "visual_genome"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    train_split: str = "train"  # vocabulary, idf and training relevance come from this split
    # a capbench-user-study file for US; the paper's 3,000-triplet study is not public
    user_study: str | None = None
    reader_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section: which queries and database, and the R grid."""

    split: str = "test"  # section 6.1: the 10k test images
    n_database: int = 10_000  # section 6.1: all 10k test images
    n_queries: int = 1_000  # section 6.1: 1k queries; not the mining pool's pool_queries
    seed: int = 0  # fixed: every row ranks the same queries
    r_max: int = 1_000  # Figure 2's axis (unverified; benchmarks/gordo2017/README.md)
    r_points: int = 100  # about this many R values from 1 to r_max
    r_grid: tuple[int, ...] | None = None  # explicit R values instead of r_max / r_points


@dataclass(frozen=True)
class TfidfConfig:
    """The ``tfidf`` section: how the relevance (section 5.1) weighs words; vocabulary and idf
    are always fitted on the training split."""

    # "tf-idf" as the paper names it: tf * ln(N / df), so a word in every image weighs 0 and the
    # relevance stays peaked (the paper's random NDCG AUC is 10.2); "smooth_plus_one" is
    # scikit-learn's ln((1 + N) / (1 + df)) + 1 (README: how each moves the relevance)
    idf: str = "classic"
    stop_words: bool = False  # not stated: no stop list (English stop words when true)
    sublinear_tf: bool = False  # not stated: raw term counts
    min_df: int = 1  # not stated: every stemmed word (the paper's 46,881-word vocabulary)

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``capbench.data.tfidf.StemmedTfidf``."""
        out: dict[str, Any] = {"idf": self.idf, "min_df": self.min_df}
        if self.sublinear_tf:
            out["sublinear_tf"] = True
        if self.stop_words:
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            out["stop_words"] = tuple(sorted(ENGLISH_STOP_WORDS))
        return out


@dataclass
class EvalData:
    """Everything a row is scored on, shared by all rows so that they see the same queries.

    ``images`` = the database records followed by user-study images not in the database;
    ``tfidf_images`` are their region tf-idf rows (the relevance), ``queries`` are positions
    in the database (= in ``images``).
    """

    train: list[CaptionedImage]
    images: list[CaptionedImage]
    n_database: int
    queries: np.ndarray
    tfidf: Any  # capbench.data.tfidf.StemmedTfidf fitted on train
    tfidf_images: sp.csr_matrix
    triplets: list[Any]  # capbench.data.user_study.Triplet, restricted to known images
    position: dict[str, int]  # image_id -> row of ``images``
    rs: list[int]
    root: Path
    dataset: dict[str, Any]
    # how peaked the relevance is: vocabulary size, mean relevance of a random database pair
    # (compare with the paper: 46,881 words on VG, random NDCG AUC 10.2)
    relevance: dict[str, float] = field(default_factory=dict)


def dataset_root(data: DataConfig, data_root: Path) -> Path:
    """``data.root`` (absolute, or under ``data_root``); a missing folder names the data card."""
    return resolve_dataset_root(data.root, data_root, "Visual Genome", DATA_CARD)


def r_grid(cfg: EvalConfig, n_database: int) -> list[int]:
    """The R values of NDCG@R / PCC@R: the config's, else the evaluation layer's default."""
    rs: Sequence[int]
    if cfg.r_grid is None:
        from capbench.eval.metrics import default_r_grid

        rs = default_r_grid(n_database, r_max=cfg.r_max, n_points=cfg.r_points).tolist()
    else:
        rs = cfg.r_grid
    out = sorted({int(r) for r in rs if 1 <= int(r) <= n_database - 1})
    if not out:
        raise ValueError(f"eval.r_grid has no value in [1, {n_database - 1}]")
    return out


def load_eval_data(
    data: DataConfig,
    cfg: EvalConfig,
    data_root: Path,
    tfidf: TfidfConfig = TfidfConfig(),
) -> EvalData:
    """Read the training and evaluation splits and the user study, then
    :func:`build_eval_data`."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    root = dataset_root(data, data_root)
    train = read(data.name, root, data.train_split, **data.reader_options)
    test = read(data.name, root, cfg.split, **data.reader_options)
    triplets: list[Any] = []
    study = None
    if data.user_study:
        from capbench.data.user_study import read_user_study

        study = Path(data.user_study)
        study = study if study.is_absolute() else Path(data_root) / study
        triplets = list(read_user_study(study).triplets)
    return build_eval_data(
        train,
        test,
        triplets,
        cfg,
        tfidf=tfidf,
        root=root,
        dataset={"name": data.name, "root": str(root), "fingerprint": dataset_fingerprint(root)},
        source=str(study) if study else "user study",
    )


def build_eval_data(
    train: Sequence[CaptionedImage],
    test: Sequence[CaptionedImage],
    triplets: Sequence[Any],
    cfg: EvalConfig,
    tfidf: TfidfConfig = TfidfConfig(),
    root: Path | None = None,
    dataset: dict[str, Any] | None = None,
    source: str = "user study",
) -> EvalData:
    """Fit tf-idf on train, draw the database and queries with ``cfg.seed`` (the same draw for
    every row), and add the user-study images that are not in the database."""
    from capbench.data.tfidf import cached_tfidf

    test = sorted(test, key=lambda r: r.image_id)
    if len(test) < 3:
        raise ValueError(f"the evaluation split has {len(test)} images; need at least 3")
    rng = np.random.default_rng(cfg.seed)
    n_db = min(cfg.n_database, len(test))
    db_pos = np.sort(rng.choice(len(test), size=n_db, replace=False))
    images = [test[i] for i in db_pos]
    n_q = min(cfg.n_queries, n_db)
    queries = np.sort(rng.choice(n_db, size=n_q, replace=False))

    position = {r.image_id: i for i, r in enumerate(images)}
    by_id = {r.image_id: r for r in train}
    by_id.update({r.image_id: r for r in test})
    missing = sorted({i for t in triplets for i in (t.query, t.a, t.b) if i not in by_id})
    if missing:
        raise ValueError(
            f"{source}: {len(missing)} image ids are not in the dataset (e.g. {missing[:3]})"
        )
    for t in triplets:
        for i in (t.query, t.a, t.b):
            if i not in position:
                position[i] = len(images)
                images.append(by_id[i])

    model, x_images = cached_tfidf(list(train), images, field="regions", **tfidf.options)
    x_images = sp.csr_matrix(x_images)
    summary = {
        "vocabulary": float(model.vocabulary_size),
        "mean_random_pair": mean_random_pair(x_images[:n_db], seed=cfg.seed),
    }
    return EvalData(
        train=list(train),
        images=images,
        n_database=n_db,
        queries=queries,
        tfidf=model,
        tfidf_images=x_images,
        triplets=list(triplets),
        position=position,
        rs=r_grid(cfg, n_db),
        root=Path(root) if root is not None else Path("."),
        dataset=dict(dataset or {}),
        relevance=summary,
    )


def mean_random_pair(x: sp.csr_matrix, seed: int = 0, pairs: int = 20_000) -> float:
    """Mean relevance (tf-idf dot product) of random pairs of distinct rows: near 0 for a peaked
    relevance, high when shared common words make every pair look related."""
    n = x.shape[0]
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=pairs)
    j = (i + rng.integers(1, n, size=pairs)) % n  # never i itself
    return float(np.asarray(x[i].multiply(x[j]).sum(axis=1)).mean())


# --------------------------------------------------------------------------- scoring


def relevance_of(ev: EvalData) -> Callable[[np.ndarray], np.ndarray]:
    """Ground-truth relevance of the database to database positions: the tf-idf dot product."""
    db_t = ev.tfidf_images[: ev.n_database].T.tocsr()

    def rel(positions: np.ndarray) -> np.ndarray:
        return np.asarray((ev.tfidf_images[positions] @ db_t).toarray(), dtype=np.float64)

    return rel


def _defined(rs: np.ndarray, values: np.ndarray) -> dict[str, list[float]]:
    """The points of a curve where it is defined (PCC@1 never is): run records hold no NaN."""
    ok = np.isfinite(values)
    return {"x": [float(r) for r in rs[ok]], "y": [float(v) for v in values[ok]]}


def _metrics_and_curves(out: Mapping[str, Any], rs: np.ndarray) -> Scores:
    from capbench.eval.metrics import curve_auc

    metrics = {"ndcg_auc": curve_auc(out["ndcg"], rs), "pcc_auc": curve_auc(out["pcc"], rs)}
    curves = {"ndcg_at_r": _defined(rs, out["ndcg"]), "pcc_at_r": _defined(rs, out["pcc"])}
    return metrics, curves, int(out["n_queries"])


def retrieval_scores_dense(
    ev: EvalData, query_emb: np.ndarray, db_emb: np.ndarray, progress: bool = False
) -> Scores:
    """NDCG/PCC curves and AUCs of embeddings (rows = positions in ``ev.images``; the database
    is the first ``n_database``) by the exact shared search, each query excluded."""
    from capbench.eval.retrieval import semantic_retrieval_curves

    rel = relevance_of(ev)
    rs = np.asarray(ev.rs, dtype=np.int64)
    out = semantic_retrieval_curves(
        np.asarray(query_emb)[ev.queries],
        np.asarray(db_emb)[: ev.n_database],
        lambda pos: rel(ev.queries[pos]),
        rs,
        exclude_self=ev.queries,
        progress=progress,
    )
    return _metrics_and_curves(out, rs)


def retrieval_scores_sparse(
    ev: EvalData, x: sp.csr_matrix, chunk: int = 128, progress: bool = False
) -> Scores:
    """The same curves for a text proxy: sparse rows ``x`` of ``ev.images`` ranked by their
    dot products (computed exactly in float64, chunk by chunk)."""
    from capbench.eval.metrics import CurveAccumulator, curves_for_block

    rel = relevance_of(ev)
    db_t = x[: ev.n_database].T.tocsr()
    rs = np.asarray(ev.rs, dtype=np.int64)
    acc = CurveAccumulator(len(rs))
    starts = range(0, len(ev.queries), chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="scoring queries", unit="chunk", leave=False)
    for start in starts:
        q = ev.queries[start : start + chunk]
        p = torch.as_tensor((x[q] @ db_t).toarray(), dtype=torch.float64)
        r = torch.as_tensor(rel(q), dtype=torch.float64)
        acc.add(*curves_for_block(p, r, torch.as_tensor(q, dtype=torch.long), rs))
    return _metrics_and_curves(acc.result(), rs)


def user_agreement_of(ev: EvalData, sim: Callable[[int, int], float]) -> float | None:
    """Agreement of a method's triplet decisions with the users (``sim`` takes positions in
    ``ev.images``); None without a user study."""
    if not ev.triplets:
        return None
    from capbench.eval.metrics import user_agreement

    pos = ev.position
    s_a = np.array([sim(pos[t.query], pos[t.a]) for t in ev.triplets], dtype=np.float64)
    s_b = np.array([sim(pos[t.query], pos[t.b]) for t in ev.triplets], dtype=np.float64)
    return float(user_agreement((s_a, s_b), ev.triplets))


def score_embeddings(
    ev: EvalData, query_emb: np.ndarray, db_emb: np.ndarray, progress: bool = False
) -> Scores:
    """Every metric of embeddings: the curves, their AUCs and US (dot product similarity)."""
    metrics, curves, n = retrieval_scores_dense(ev, query_emb, db_emb, progress)
    us = user_agreement_of(ev, lambda i, j: float(np.dot(query_emb[i], db_emb[j])))
    return _with(metrics, us), curves, n


def score_sparse(ev: EvalData, x: sp.csr_matrix, progress: bool = False) -> Scores:
    """Every metric of a sparse text proxy (tf-idf rows of ``ev.images``)."""
    x = sp.csr_matrix(x)
    metrics, curves, n = retrieval_scores_sparse(ev, x, progress=progress)
    us = user_agreement_of(ev, lambda i, j: float(x[i].multiply(x[j]).sum()))
    return _with(metrics, us), curves, n


def _with(metrics: dict[str, float], us: float | None) -> dict[str, float]:
    """US only when there is a user study: a metric that could not be computed is absent,
    never invented."""
    return {**metrics, "us": us} if us is not None else dict(metrics)
