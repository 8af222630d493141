"""Row targets of Gordo & Larlus 2017 (``benchmarks/gordo2017``): Tables 1 and 2, Figures 2-3.

``run_row(config, ctx)`` reads the typed row (``config.row_config``) and dispatches on
``row.kind``:

* ``random``           random signatures (``row.repeats`` draws, mean reported; the paper's "x5")
* ``text_oracle``      ranking by the tf-idf relevance itself (NDCG/PCC AUC = 100 by construction)
* ``tfidf``            tf-idf of another text field (``row.field``: regions | objects | captions)
* ``word2vec_fv``      Fisher vector of the word2vec vectors of ``row.field``'s words
* ``meteor``           METEOR match kernel between two images' texts (user agreement only)
* ``generated_captions`` tf-idf of a captioner's captions of the test images (``row.captioner``)
* ``annotators``       leave-one-user-out agreement of the user study itself (Table 1, row 1)
* ``visual_baseline``  pretrained backbone + R-MAC, whitening learned on train, no fine-tuning
* ``trained``          ``row.train_mode``: V | V+T | WSABIE, ``row.query_mode``: V | V+T

Every row is scored by the same protocol, ``capbench.eval.protocols.semantic_retrieval``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from capbench.data.text import regex_tokenize
from capbench.eval.protocols.semantic_retrieval import (
    EvalData,
    load_eval_data,
    score_embeddings,
    score_sparse,
    user_agreement_of,
)
from capbench.eval.unreadable import require_every_image
from capbench.methods.config import config_dict
from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext, RowResult
from capbench.methods.semantic_retrieval.config import SemanticRetrievalRow, row_config
from capbench.methods.semantic_retrieval.generated_captions import row_generated_captions
from capbench.methods.training import resolve_pretrain_data, trunk_identity

Row = Callable[[SemanticRetrievalRow, RowContext, EvalData], RowResult]


def _row_random(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Random signatures: ``row.repeats`` independent draws from the row seed; mean and std."""
    runs: list[dict[str, float]] = []
    curves_runs: list[dict[str, dict[str, list[float]]]] = []
    n = 0
    for i in range(cfg.row.repeats):
        rng = np.random.default_rng([int(ctx.seed), i])
        emb = rng.standard_normal((len(ev.images), cfg.row.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        metrics, curves, n = score_embeddings(ev, emb, emb)
        runs.append(metrics)
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
        extra={"repeats": cfg.row.repeats, "std_over_repeats": std, "per_repeat": runs},
    )


def _row_text_oracle(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Rank by the relevance itself: the upper bound that defines 100 on both AUCs."""
    metrics, curves, n = score_sparse(ev, ev.tfidf_images, progress=ctx.progress)
    return RowResult(metrics=metrics, n_scored=n, curves=curves, dataset=ev.dataset)


def _row_tfidf(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Another text proxy (objects, sentence captions, regions) scored against the users and
    against the region tf-idf relevance; vocabulary and idf again from train only."""
    from capbench.data.tfidf import cached_tfidf

    _, x = cached_tfidf(ev.train, ev.images, field=cfg.row.field, **cfg.tfidf.options)
    metrics, curves, n = score_sparse(ev, x)
    return RowResult(
        metrics=metrics,
        n_scored=n,
        curves=curves,
        dataset=ev.dataset,
        extra={"field": cfg.row.field},
    )


def _row_word2vec_fv(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Table 1, row 5: the Fisher vector of the word2vec vectors of an image's words (the
    ``row.field`` text), GMM and (trained) vectors fitted on the training split only."""
    from capbench.data.tfidf import record_document
    from capbench.eval.fisher_vector import FisherVectors
    from capbench.models.text_encoders.word2vec import load_keyed_vectors, train_keyed_vectors

    row = cfg.row
    train_docs = [record_document(r, row.field) for r in ev.train]
    if row.word_vectors:
        kv = load_keyed_vectors(row.word_vectors)
        source = row.word_vectors
    else:
        kv = train_keyed_vectors(train_docs, dim=row.word2vec_dim, seed=ctx.seed)
        source = f"gensim word2vec on the training {row.field} (dim {row.word2vec_dim})"

    def descriptors(doc: str) -> np.ndarray:
        words = [w for w in regex_tokenize(doc) if w in kv.key_to_index]
        return np.stack([kv[w] for w in words]) if words else np.zeros((0, kv.vector_size))

    fv = FisherVectors(row.fv_components, seed=ctx.seed)
    fv.fit(np.concatenate([descriptors(d) for d in train_docs]))
    emb = fv.encode_many([descriptors(record_document(r, row.field)) for r in ev.images])
    metrics, curves, n = score_embeddings(ev, emb, emb)
    return RowResult(
        metrics=metrics,
        n_scored=n,
        curves=curves,
        dataset=ev.dataset,
        extra={"field": row.field, "word_vectors": source, "fv_dim": fv.dim},
    )


def _row_meteor(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Table 1, row 4: the user-study agreement of a METEOR match kernel between the two images'
    ``row.field`` texts (only US: the kernel is computed for the study's image pairs only)."""
    from capbench.eval.meteor_kernel import MeteorScorer, kernel_pairs, match_kernel

    if not ev.triplets:
        raise ValueError("the meteor row reports user agreement only: it needs data.user_study")
    row = cfg.row
    pos = ev.position
    triplets = list(ev.triplets)
    if row.meteor_triplets is not None and row.meteor_triplets < len(triplets):
        keep = np.random.default_rng(cfg.eval.seed).choice(
            len(triplets), row.meteor_triplets, replace=False
        )
        triplets = [triplets[i] for i in sorted(keep)]
        ev = replace(ev, triplets=triplets)
    pairs = sorted({(pos[t.query], pos[c]) for t in triplets for c in (t.a, t.b)})
    sets = [_texts(r, row.field) for r in ev.images]
    segments = kernel_pairs(sets, pairs, row.meteor_symmetric)
    scores = dict(zip(segments, MeteorScorer().score(segments, ctx.progress), strict=True))
    kernel = match_kernel(sets, pairs, scores, row.meteor_symmetric)
    us = user_agreement_of(ev, lambda i, j: kernel[(i, j)])
    return RowResult(
        metrics={"us": float(us)},  # type: ignore[arg-type]
        n_scored=len(ev.triplets),
        dataset=ev.dataset,
        extra={
            "field": row.field,
            "segments": len(segments),
            "image_pairs": len(pairs),
            "symmetric": row.meteor_symmetric,
        },
    )


def _texts(record: Any, field: str) -> list[str]:
    """The separate texts of an image (region phrases or captions) the METEOR kernel compares."""
    if field == "regions":
        return [r.phrase for r in record.regions]
    if field == "captions":
        return list(record.captions)
    raise ValueError(f"row.field {field!r}: the meteor row compares regions or captions")


def _row_annotators(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Leave-one-user-out agreement between the annotators of the user study."""
    from capbench.eval.metrics import inter_annotator_agreement

    if not ev.triplets:
        raise ValueError("the annotators row needs data.user_study")
    mean, std = inter_annotator_agreement(ev.triplets)
    return RowResult(
        metrics={"us": float(mean)},
        n_scored=len(ev.triplets),
        dataset=ev.dataset,
        extra={"std_over_users": float(std)},
    )


def _row_model(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Visual baseline (no training) or a trained model, scored image-to-image (or by image +
    text queries against the image-only database)."""
    import torch

    from capbench.eval.extract import computed_on_rank_zero
    from capbench.methods.semantic_retrieval.figures import write_figure3
    from capbench.methods.semantic_retrieval.index import save_index
    from capbench.methods.semantic_retrieval.train import (
        build_datamodule,
        build_visual_baseline,
        embed_records,
        train_semantic_retrieval,
    )

    row = cfg.row
    data = {"source": cfg.data.name, "records": {"train": ev.train}}
    dm = build_datamodule(cfg.method, data, cfg.tfidf.options, seed=ctx.seed)
    if row.kind == "visual_baseline":
        model, checkpoint = build_visual_baseline(cfg.method, dm, ctx.workdir, seed=ctx.seed)
        extra: dict[str, Any] = {}
    else:
        model, checkpoint = train_semantic_retrieval(
            cfg.method,
            dm,
            training_workdir(cfg, ctx, ev.dataset.get("fingerprint", {}).get("sha256")),
            train_mode=row.train_mode,
            seed=ctx.seed,
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"gordo2017-{row.name or 'trained'}"),
        )
        extra = {"train_mode": row.train_mode, "query_mode": row.query_mode}
    extra.update(model.provenance)
    model = model.to(ctx.eval_device()).eval()  # Lightning hands the model back on the CPU
    db_emb = _to_numpy(embed_records(model, ev.images, progress=ctx.progress))
    # every test image is a query and in the database: say which cannot be read, not "nan"
    require_every_image(db_emb, ev.images, "the ranking")
    if row.query_mode.upper() == "V+T":  # phi(image) with theta(its own text); database image-only
        with torch.no_grad():
            query_emb = _to_numpy(model.embed_query(db_emb, ev.tfidf_images))
    else:
        query_emb = db_emb

    def score_and_write() -> tuple[Any, Any, int, dict[str, Any]]:
        """Scores, the search index and Figure 3: rank 0's work in a DDP run (one set of files,
        the protocol's ranking computed once), handed to every rank."""
        metrics, curves, n = score_embeddings(ev, query_emb, db_emb, progress=ctx.progress)
        index_dir = Path(ctx.workdir) / "index"
        m = cfg.model
        save_index(
            index_dir,
            ev.images[: ev.n_database],
            db_emb[: ev.n_database],
            checkpoint,
            ev.tfidf,
            m.longest_side,
            m.pad_to_square,
        )
        written: dict[str, Any] = {"index": str(index_dir)}
        if cfg.figure3.pairs and checkpoint:
            name = row.name or row.kind
            written["figure3"] = write_figure3(
                model, ev, db_emb, m.longest_side, name, ctx, cfg.figure3.pairs
            )
        return metrics, curves, n, written

    metrics, curves, n, written = computed_on_rank_zero(score_and_write)
    extra.update(written)
    return RowResult(
        metrics=metrics,
        n_scored=n,
        curves=curves,
        checkpoint=str(checkpoint) if checkpoint else None,
        dataset=ev.dataset,
        extra=extra,
    )


def training_workdir(cfg: SemanticRetrievalRow, ctx: RowContext, data_sha256: str | None) -> Path:
    """Where a row trains. With ``train.share_checkpoint`` rows that train the same model (same
    data, model, training and mining sections, mode and seed) share one folder under the cache,
    so (V+T, V) and (V+T, V+T), which differ only at query time, train once. The data enters
    by its content (``data_sha256``: the fingerprint the evaluation data already carries) as
    well as its path: scenes data rewritten at another size in the same folder must not find
    the old model (None: evaluation data built by hand, which carries no fingerprint)."""
    if not cfg.train.share_checkpoint:
        return Path(ctx.workdir)
    from capbench.paths import cache_root

    shared = _shared_model_config(cfg)
    # the trunk by content (a retrained scenes trunk, a new file at the same path) and the
    # training code's version: bump "v" with a change that alters what training produces
    shared["trunk"] = trunk_identity(cfg.model.backbone, cfg.model.backbone_weights, cfg.pretrain)
    shared["v"] = 1
    shared["seed"] = int(ctx.seed)
    if ctx.training_world_size() > 1:  # DDP: N times the batch is another model
        shared["world_size"] = ctx.training_world_size()
    shared["data_root"] = str(Path(ctx.data_root).resolve())
    shared["data_fingerprint"] = data_sha256
    digest = hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()
    return cache_root() / "gordo2017" / "models" / digest[:16]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


KINDS: dict[str, Row] = {
    "random": _row_random,
    "text_oracle": _row_text_oracle,
    "tfidf": _row_tfidf,
    "word2vec_fv": _row_word2vec_fv,
    "meteor": _row_meteor,
    "generated_captions": row_generated_captions,
    "annotators": _row_annotators,
    "visual_baseline": _row_model,
    "trained": _row_model,
}


def load_row_eval_data(cfg: SemanticRetrievalRow, ctx: RowContext) -> EvalData:
    """The protocol's data for a row (splits, queries, relevance, user study)."""
    return load_eval_data(cfg.data, cfg.eval, Path(ctx.data_root), cfg.tfidf)


def _shared_model_config(cfg: SemanticRetrievalRow) -> dict[str, Any]:
    """What of a row config decides the model a ``trained`` row trains: every section but the
    row's query mode (so (V+T, V) and (V+T, V+T) train one model)."""
    shared: dict[str, Any] = {
        k: config_dict(getattr(cfg, k)) for k in ("data", "tfidf", "model", "train", "mining")
    }
    shared["pretrain"] = cfg.pretrain
    shared["train_mode"] = cfg.row.train_mode.upper()
    return shared


def shared_trained_models(config: dict[str, Any]) -> list[str]:
    """The method's ``shared_models``: the model a ``trained`` row trains under the cache with
    ``train.share_checkpoint``, which the rows differing only in their query mode share; keyed
    by what :func:`training_workdir` keys it by that a row config holds (the data root, seed and
    trunk file are the plan's and the run's)."""
    cfg = row_config(config)
    if cfg.row.kind != "trained" or not cfg.train.share_checkpoint:
        return []
    text = json.dumps(_shared_model_config(cfg), sort_keys=True, default=str)
    return [f"trained-{hashlib.sha256(text.encode()).hexdigest()[:16]}"]


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every gordo2017 row. Each record carries the
    relevance summary (vocabulary size, mean relevance of a random pair) beside its metrics."""
    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    ev = load_row_eval_data(cfg, ctx)
    result = KINDS[cfg.row.kind](cfg, ctx, ev)
    result.extra.setdefault("relevance", {**ev.relevance, "idf": cfg.tfidf.idf})
    return result
