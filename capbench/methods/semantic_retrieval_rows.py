"""Row targets for Gordo & Larlus 2017 (``benchmarks/gordo2017``): Tables 1 and 2, Figure 2.

``run_row(config, ctx)`` dispatches on ``config["row"]["kind"]``:

* ``random``           random signatures (``row.repeats`` draws, mean reported; the paper's "x5")
* ``text_oracle``      ranking by the tf-idf relevance itself (NDCG/PCC AUC = 100 by construction)
* ``tfidf``            tf-idf of another text field (``row.field``: regions | objects | captions)
* ``annotators``       leave-one-user-out agreement of the user study itself (Table 1, row 1)
* ``visual_baseline``  pretrained backbone + R-MAC, whitening learned on train, no fine-tuning
* ``trained``          ``row.train``: V | V+T | wsabie, ``row.test``: V | V+T

Every row is scored the same way (section 6.1): relevance = dot product of L2-normalised
stemmed tf-idf over region phrases (vocabulary and idf from the training split); ``n_queries``
queries drawn with a fixed evaluation seed from a database of ``n_database`` images of the
evaluation split, each query removed from its own results; NDCG@R and PCC@R over the R grid,
their AUCs, and the user-study agreement. The database is always image-only; only the
(V+T, V+T) query adds theta of the query's own text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from capbench.atomic import atomic_path, atomic_write_text
from capbench.data.records import CaptionedImage
from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext, RowResult

log = logging.getLogger(__name__)

DATA_CARD = "data_cards/visual_genome.md"

# (query positions in the database) -> predicted similarities (b, n_database)
PredFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- data


@dataclass
class EvalData:
    """Everything a row is scored on, shared by all kinds so that rows see the same queries.

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


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise TypeError(f"config section {name!r} must be a mapping, got {type(value).__name__}")
    return value


def dataset_root(config: dict[str, Any], ctx: RowContext) -> Path:
    """``data.root`` (absolute, or relative to the context's data root); fails naming the card."""
    data = _section(config, "data")
    root = Path(data.get("root", "visual_genome"))
    if not root.is_absolute():
        root = Path(ctx.data_root) / root
    if not root.is_dir():
        raise FileNotFoundError(
            f"Visual Genome not found at {root}: see {DATA_CARD} for how to obtain and lay it out "
            "(or run the scenes profile, which generates its own data)"
        )
    return root


def _user_study_path(config: dict[str, Any], ctx: RowContext) -> Path | None:
    path = _section(config, "data").get("user_study")
    if not path:
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(ctx.data_root) / path


def _r_grid(eval_cfg: dict[str, Any], n_database: int) -> list[int]:
    """The R values of NDCG@R / PCC@R: the config's, else the evaluation layer's default."""
    rs = eval_cfg.get("r_grid")
    if rs is None:
        from capbench.eval.metrics import default_r_grid

        rs = default_r_grid(
            n_database,
            r_max=int(eval_cfg.get("r_max", 1000)),
            n_points=int(eval_cfg.get("r_points", 100)),
        )
    rs = sorted({int(r) for r in rs if 1 <= int(r) <= n_database - 1})
    if not rs:
        raise ValueError(f"eval.r_grid has no value in [1, {n_database - 1}]")
    return rs


def load_eval_data(config: dict[str, Any], ctx: RowContext) -> EvalData:
    """Read the splits and the user study from disk, then :func:`build_eval_data`."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    data = _section(config, "data")
    ev_cfg = _section(config, "eval")
    root = dataset_root(config, ctx)
    reader = data.get("name", "visual_genome")
    options = dict(data.get("reader_options") or {})
    train = read(reader, root, data.get("train_split", "train"), **options)
    test = read(reader, root, ev_cfg.get("split", "test"), **options)
    triplets: list[Any] = []
    study = _user_study_path(config, ctx)
    if study is not None:
        from capbench.data.user_study import read_user_study

        triplets = list(read_user_study(study).triplets)
    return build_eval_data(
        train,
        test,
        triplets,
        ev_cfg,
        tfidf_options=_section(config, "tfidf").get("options") or {},
        root=root,
        dataset={"name": reader, "root": str(root), "fingerprint": dataset_fingerprint(root)},
        source=str(study) if study else "user study",
    )


def build_eval_data(
    train: Sequence[CaptionedImage],
    test: Sequence[CaptionedImage],
    triplets: Sequence[Any],
    eval_cfg: dict[str, Any],
    tfidf_options: dict[str, Any] | None = None,
    root: Path | None = None,
    dataset: dict[str, Any] | None = None,
    source: str = "user study",
) -> EvalData:
    """Fit tf-idf on train, draw the database and queries with ``eval.seed`` (the same draw for
    every row), and add the user-study images that are not in the database."""
    from capbench.data.tfidf import cached_tfidf

    test = sorted(test, key=lambda r: r.image_id)
    if len(test) < 3:
        raise ValueError(f"the evaluation split has {len(test)} images; need at least 3")
    rng = np.random.default_rng(int(eval_cfg.get("seed", 0)))
    n_db = min(int(eval_cfg.get("n_database", 10_000)), len(test))
    db_pos = np.sort(rng.choice(len(test), size=n_db, replace=False))
    images = [test[i] for i in db_pos]
    n_q = min(int(eval_cfg.get("n_queries", 1_000)), n_db)
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

    tfidf, x_images = cached_tfidf(
        list(train), images, field="regions", **dict(tfidf_options or {})
    )
    return EvalData(
        train=list(train),
        images=images,
        n_database=n_db,
        queries=queries,
        tfidf=tfidf,
        tfidf_images=sp.csr_matrix(x_images),
        triplets=list(triplets),
        position=position,
        rs=_r_grid(eval_cfg, n_db),
        root=Path(root) if root is not None else Path("."),
        dataset=dict(dataset or {}),
    )


# --------------------------------------------------------------------------- scoring


def relevance_fn(ev: EvalData) -> PredFn:
    """Ground-truth relevance of the database to query positions: the tf-idf dot product."""
    db_t = ev.tfidf_images[: ev.n_database].T.tocsr()

    def rel(q: np.ndarray) -> np.ndarray:
        return np.asarray((ev.tfidf_images[q] @ db_t).toarray(), dtype=np.float64)

    return rel


def dense_pred_fn(query_emb: np.ndarray, db_emb: np.ndarray) -> PredFn:
    """Dot products of (row-indexed) query embeddings with the database embeddings."""
    db_t = np.ascontiguousarray(db_emb.T, dtype=np.float32)

    def pred(q: np.ndarray) -> np.ndarray:
        return np.asarray(query_emb[q], dtype=np.float32) @ db_t

    return pred


def sparse_pred_fn(x: sp.csr_matrix, n_database: int) -> PredFn:
    """Dot products of sparse text vectors (tf-idf rows) of queries with the database's."""
    db_t = x[:n_database].T.tocsr()

    def pred(q: np.ndarray) -> np.ndarray:
        return np.asarray((x[q] @ db_t).toarray(), dtype=np.float64)

    return pred


def retrieval_scores(
    ev: EvalData, pred: PredFn, chunk: int = 128, progress: bool = False
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]], int]:
    """NDCG@R and PCC@R averaged over the queries (each scored once, itself excluded), their AUCs.

    Queries are processed in chunks so memory is ``chunk x n_database``; per-query curves are
    summed by the evaluation layer's accumulator, so the mean (which skips queries where a value
    is undefined) does not depend on ``chunk``.
    """
    import torch

    from capbench.eval.metrics import CurveAccumulator, curve_auc, curves_for_block

    rel = relevance_fn(ev)
    rs = np.asarray(ev.rs, dtype=np.int64)
    acc = CurveAccumulator(len(rs))
    starts = range(0, len(ev.queries), chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="scoring queries", unit="chunk", leave=False)
    for start in starts:
        q = ev.queries[start : start + chunk]
        p = torch.as_tensor(pred(q), dtype=torch.float64)
        r = torch.as_tensor(rel(q), dtype=torch.float64)
        ndcg, pcc = curves_for_block(p, r, torch.as_tensor(q, dtype=torch.long), rs)
        acc.add(ndcg, pcc)
    out = acc.result()
    metrics = {"ndcg_auc": curve_auc(out["ndcg"], rs), "pcc_auc": curve_auc(out["pcc"], rs)}
    curves = {"ndcg_at_r": _defined(rs, out["ndcg"]), "pcc_at_r": _defined(rs, out["pcc"])}
    return metrics, curves, int(out["n_queries"])


def _defined(rs: np.ndarray, values: np.ndarray) -> dict[str, list[float]]:
    """The points of a curve where it is defined (PCC@1 never is): run records hold no NaN."""
    ok = np.isfinite(values)
    return {"x": [float(r) for r in rs[ok]], "y": [float(v) for v in values[ok]]}


def triplet_scores(ev: EvalData, sim: Callable[[int, int], float]) -> tuple[np.ndarray, np.ndarray]:
    """(s(q, a) for all triplets, s(q, b) for all triplets); ``sim`` takes positions in ``ev.images``."""
    pos = ev.position
    s_a = np.array([sim(pos[t.query], pos[t.a]) for t in ev.triplets], dtype=np.float64)
    s_b = np.array([sim(pos[t.query], pos[t.b]) for t in ev.triplets], dtype=np.float64)
    return s_a, s_b


def us_agreement(ev: EvalData, sim: Callable[[int, int], float]) -> float | None:
    """Agreement of a method's triplet decisions with the users; None without a user study."""
    if not ev.triplets:
        return None
    from capbench.eval.metrics import user_agreement

    return float(user_agreement(triplet_scores(ev, sim), ev.triplets))


def _embedding_sim(query_emb: np.ndarray, db_emb: np.ndarray) -> Callable[[int, int], float]:
    return lambda i, j: float(np.dot(query_emb[i], db_emb[j]))


def _sparse_sim(x: sp.csr_matrix) -> Callable[[int, int], float]:
    return lambda i, j: float(x[i].multiply(x[j]).sum())


def score_embeddings(
    ev: EvalData, query_emb: np.ndarray, db_emb: np.ndarray, progress: bool = False
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]], int]:
    """All metrics of a row given query-side and database-side embeddings of ``ev.images``."""
    metrics, curves, n = retrieval_scores(
        ev, dense_pred_fn(query_emb, db_emb[: ev.n_database]), progress=progress
    )
    metrics["us"] = us_agreement(ev, _embedding_sim(query_emb, db_emb))
    return metrics, curves, n


def _clean(metrics: dict[str, float | None]) -> dict[str, float]:
    """Drop metrics that could not be computed (no user study) rather than inventing them."""
    return {k: float(v) for k, v in metrics.items() if v is not None}


# --------------------------------------------------------------------------- row kinds


def _row_random(config: dict[str, Any], ctx: RowContext, ev: EvalData) -> RowResult:
    """Random signatures: ``row.repeats`` independent draws from the row seed; mean and std."""
    row = _section(config, "row")
    repeats = int(row.get("repeats", 5))
    dim = int(row.get("dim", 128))
    runs: list[dict[str, float]] = []
    curves_runs: list[dict[str, dict[str, list[float]]]] = []
    n = 0
    for i in range(repeats):
        rng = np.random.default_rng([int(ctx.seed), i])
        emb = rng.standard_normal((len(ev.images), dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        metrics, curves, n = score_embeddings(ev, emb, emb)
        runs.append(_clean(metrics))
        curves_runs.append(curves)
    keys = runs[0].keys()
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    std = {k: float(np.std([r[k] for r in runs])) for k in keys}
    curves = {
        name: {
            "x": curves_runs[0][name]["x"],
            "y": [float(v) for v in np.mean([c[name]["y"] for c in curves_runs], axis=0)],
        }
        for name in curves_runs[0]
    }
    return RowResult(
        metrics=mean,
        n_scored=n,
        curves=curves,
        dataset=ev.dataset,
        extra={"repeats": repeats, "std_over_repeats": std, "per_repeat": runs},
    )


def _row_text_oracle(config: dict[str, Any], ctx: RowContext, ev: EvalData) -> RowResult:
    """Rank by the relevance itself: the upper bound that defines 100 on both AUCs."""
    metrics, curves, n = retrieval_scores(
        ev, sparse_pred_fn(ev.tfidf_images, ev.n_database), progress=ctx.progress
    )
    metrics["us"] = us_agreement(ev, _sparse_sim(ev.tfidf_images))
    return RowResult(metrics=_clean(metrics), n_scored=n, curves=curves, dataset=ev.dataset)


def _row_tfidf(config: dict[str, Any], ctx: RowContext, ev: EvalData) -> RowResult:
    """Another text proxy (objects, sentence captions, regions) scored against the users and
    against the region tf-idf relevance; vocabulary and idf again from train only."""
    from capbench.data.tfidf import cached_tfidf

    row = _section(config, "row")
    field = row.get("field", "regions")
    opts = dict(_section(config, "tfidf").get("options") or {})
    _, x = cached_tfidf(ev.train, ev.images, field=field, **opts)
    x = sp.csr_matrix(x)
    metrics, curves, n = retrieval_scores(ev, sparse_pred_fn(x, ev.n_database))
    metrics["us"] = us_agreement(ev, _sparse_sim(x))
    return RowResult(
        metrics=_clean(metrics),
        n_scored=n,
        curves=curves,
        dataset=ev.dataset,
        extra={"field": field},
    )


def _row_annotators(config: dict[str, Any], ctx: RowContext, ev: EvalData) -> RowResult:
    """Leave-one-user-out agreement between the annotators of the user study."""
    from capbench.eval.metrics import inter_annotator_agreement

    if not ev.triplets:
        raise ValueError("the annotators row needs data.user_study")
    result = inter_annotator_agreement(ev.triplets)
    if isinstance(result, tuple):
        mean, std = float(result[0]), float(result[1])
    else:
        mean, std = float(result), None
    extra: dict[str, Any] = {"std_over_users": std} if std is not None else {}
    return RowResult(
        metrics={"us": mean}, n_scored=len(ev.triplets), dataset=ev.dataset, extra=extra
    )


def _row_model(config: dict[str, Any], ctx: RowContext, ev: EvalData) -> RowResult:
    """Visual baseline (no training) or a trained model; both are R-MAC models from
    ``capbench.methods.semantic_retrieval``, scored image-to-image (or image+text queries)."""
    import torch

    from capbench.methods import semantic_retrieval as sr

    config = _resolve_pretrain_data(config, ctx)
    row = _section(config, "row")
    kind = row["kind"]
    test_mode = str(row.get("test", "V")).upper()
    if kind == "visual_baseline":
        model, checkpoint = sr.build_visual_baseline(ev.train, config, ctx.workdir, seed=ctx.seed)
        extra: dict[str, Any] = {}
    else:
        model, checkpoint = sr.train_semantic_retrieval(
            ev.train,
            ev.tfidf,
            config,
            training_workdir(config, ctx),
            seed=ctx.seed,
            mode=str(row.get("train", "V")),
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"gordo2017-{row.get('name', 'trained')}"),
        )
        extra = {"train": row.get("train", "V"), "test": test_mode}
    extra.update(getattr(model, "provenance", {}) or {})
    model = model.to(eval_device(ctx)).eval()  # Lightning hands the model back on the CPU
    db_emb = _to_numpy(sr.embed_records(model, ev.images, config, progress=ctx.progress))
    if test_mode == "V+T":  # phi(image) combined with theta(its own text); database image-only
        with torch.no_grad():
            query_emb = _to_numpy(model.embed_query(db_emb, ev.tfidf_images))
    elif test_mode == "V":
        query_emb = db_emb
    else:
        raise ValueError(f"row.test must be V or V+T, got {row.get('test')!r}")
    metrics, curves, n = score_embeddings(ev, query_emb, db_emb, progress=ctx.progress)
    index_dir = Path(ctx.workdir) / "index"
    save_index(
        index_dir,
        ev.images[: ev.n_database],
        db_emb[: ev.n_database],
        checkpoint,
        ev.tfidf,
        image_config=image_section(config),
    )
    extra["index"] = str(index_dir)
    fig = _section(config, "figure3")
    if fig.get("pairs", 0) and checkpoint:
        extra["figure3"] = write_figure3(model, ev, db_emb, config, ctx, int(fig["pairs"]))
    return RowResult(
        metrics=_clean(metrics),
        n_scored=n,
        curves=curves,
        checkpoint=str(checkpoint) if checkpoint else None,
        dataset=ev.dataset,
        extra=extra,
    )


def training_workdir(config: dict[str, Any], ctx: RowContext) -> Path:
    """Where a row trains. With ``train.share_checkpoint`` rows that train the same model (same
    data, model, training and mining sections, mode and seed) share one folder under the cache,
    so (V+T, V) and (V+T, V+T), which differ only at query time, train once."""
    if not _section(config, "train").get("share_checkpoint", False):
        return Path(ctx.workdir)
    import hashlib

    from capbench.paths import cache_root

    keys = ("data", "tfidf", "model", "train", "mining", "pretrain")
    shared = {k: config.get(k) for k in keys}
    shared["mode"] = str(_section(config, "row").get("train", "V")).upper()
    shared["seed"] = int(ctx.seed)
    shared["data_root"] = str(Path(ctx.data_root).resolve())
    digest = hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()
    return cache_root() / "gordo2017" / "models" / digest[:16]


def _resolve_pretrain_data(config: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
    """``pretrain.data`` (the labelled images the scenes backbone is pretrained on) relative to
    the row's data root, like ``data.root``; a copy, the runner's config is left as resolved."""
    pre = _section(config, "pretrain")
    if not pre.get("data") or Path(pre["data"]).is_absolute():
        return config
    return {**config, "pretrain": {**pre, "data": str(Path(ctx.data_root) / pre["data"])}}


def eval_device(ctx: RowContext) -> str:
    """Embed on the GPU when the row may use one (10k images at 576 px are slow on a CPU)."""
    import torch

    wants_gpu = str(ctx.accelerator) in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def image_section(config: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing values a query image needs to be embedded like the database."""
    model = _section(config, "model")
    return {k: model[k] for k in ("longest_side", "pad_to_square") if k in model}


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


KINDS: dict[str, Callable[[dict[str, Any], RowContext, EvalData], RowResult]] = {
    "random": _row_random,
    "text_oracle": _row_text_oracle,
    "tfidf": _row_tfidf,
    "annotators": _row_annotators,
    "visual_baseline": _row_model,
    "trained": _row_model,
}


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every gordo2017 row."""
    kind = _section(config, "row").get("kind")
    if kind not in KINDS:
        raise ValueError(f"config row.kind must be one of {sorted(KINDS)}, got {kind!r}")
    ev = load_eval_data(config, ctx)
    return KINDS[kind](config, ctx, ev)


# --------------------------------------------------------------------------- index (capbench query)

INDEX_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
TFIDF_FILE = "tfidf.joblib"


def save_index(
    out_dir: Path,
    records: Sequence[CaptionedImage],
    embeddings: np.ndarray,
    checkpoint: str | Path | None,
    tfidf: Any,
    image_config: dict[str, Any] | None = None,
) -> Path:
    """Write a query index: database embeddings, ids and paths, the checkpoint that embeds a new
    query image, and the tf-idf model that turns +word/-word modifiers into text vectors."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(records) != len(embeddings):
        raise ValueError(f"{len(records)} records but {len(embeddings)} embeddings")
    with atomic_path(out_dir / EMBEDDINGS_FILE, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(embeddings, dtype=np.float32))
    tfidf.save(out_dir / TFIDF_FILE)
    meta = {
        "format": "capbench-gordo-index",
        "version": 1,
        "ids": [r.image_id for r in records],
        "paths": [r.image_path for r in records],
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "tfidf": TFIDF_FILE,
        "embeddings": EMBEDDINGS_FILE,
        "image_config": dict(image_config or {}),
    }
    atomic_write_text(out_dir / INDEX_FILE, json.dumps(meta))
    return out_dir


@dataclass
class Index:
    ids: list[str]
    paths: list[str]
    embeddings: np.ndarray
    checkpoint: str | None
    tfidf: Any
    image_config: dict[str, Any]


def load_index(index_dir: Path) -> Index:
    """Read an index written by :func:`save_index`; errors name the file and what is wrong."""
    from capbench.data.tfidf import StemmedTfidf

    index_dir = Path(index_dir)
    meta_path = index_dir / INDEX_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path}: no index here (build one with a gordo2017 row or "
            "`capbench query --build-index`)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != "capbench-gordo-index":
        raise ValueError(f"{meta_path}: not a capbench-gordo-index file")
    emb = np.load(index_dir / meta["embeddings"])
    if emb.shape[0] != len(meta["ids"]):
        raise ValueError(f"{meta_path}: {len(meta['ids'])} ids but {emb.shape[0]} embeddings")
    return Index(
        ids=list(meta["ids"]),
        paths=list(meta["paths"]),
        embeddings=emb,
        checkpoint=meta.get("checkpoint"),
        tfidf=StemmedTfidf.load(index_dir / meta["tfidf"]),
        image_config=dict(meta.get("image_config") or {}),
    )


# --------------------------------------------------------------------------- Figure 3


def explain_pair(
    model: Any, path_a: str | Path, path_b: str | Path, longest_side: int | None, k: int = 5
) -> tuple[Any, Any]:
    """Grad-CAM overlays of two image files side by side (PIL image) and the grounding itself.

    Images are resized without padding, so the heat maps line up with the pictures.
    """
    from capbench.data.images import load_rgb
    from capbench.eval.grounding import ground_pair, overlay, side_by_side
    from capbench.methods.semantic_retrieval_data import load_image_tensor

    cfg = {"model": {"longest_side": longest_side, "pad_to_square": False}}
    if longest_side is None:
        from capbench.data.images import build_transform

        def load(path: str | Path) -> Any:
            return build_transform()(load_rgb(path))
    else:

        def load(path: str | Path) -> Any:
            return load_image_tensor(str(path), cfg)

    model.eval()
    g = ground_pair(model.conv_features, model.pool_features, load(path_a), load(path_b), k=k)
    panels = [overlay(load_rgb(path_a), g.heat_a), overlay(load_rgb(path_b), g.heat_b)]
    return side_by_side(panels), g


def figure_dir(ctx: RowContext, name: str) -> Path:
    """``<results>/gordo2017/<name>-<profile>``: beside the runner's ``work`` folder when the
    row runs under the runner, else under ``$CAPBENCH_RESULTS``."""
    from capbench.paths import results_root

    work = Path(ctx.workdir).parent
    base = work.parent if work.name == "work" else results_root() / "gordo2017"
    return base / f"{name}-{ctx.profile}"


def write_figure3(
    model: Any,
    ev: EvalData,
    db_emb: np.ndarray,
    config: dict[str, Any],
    ctx: RowContext,
    n_pairs: int,
) -> list[str]:
    """Grounded pairs (Figure 3): each of the first queries with its best database match."""
    out_dir = figure_dir(ctx, "figure3")
    out_dir.mkdir(parents=True, exist_ok=True)
    db = ev.images[: ev.n_database]
    side = _section(config, "model").get("longest_side")
    row_name = _section(config, "row").get("name", _section(config, "row").get("kind"))
    written: list[str] = []
    for qi in (int(q) for q in ev.queries[:n_pairs]):
        sims = db_emb[: ev.n_database] @ db_emb[qi]
        sims[qi] = -np.inf
        di = int(np.argmax(sims))
        pair, _ = explain_pair(model, db[qi].image_path, db[di].image_path, side)
        path = out_dir / f"{row_name}_{db[qi].image_id}_{db[di].image_id}.png"
        pair.save(path)
        written.append(str(path))
    return written
