"""The semantic-retrieval protocol (capbench.eval.protocols.semantic_retrieval) against the dense
reference curves, on the small constructed evaluation set of tests/conftest.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capbench.eval.metrics import curve_auc, semantic_curves
from capbench.eval.protocols import semantic_retrieval as protocol


def _reference_aucs(ev, query_emb, db_emb) -> dict[str, float]:
    """Dense [queries x database] scores and relevance through the reference curve code."""
    pred = query_emb[ev.queries] @ db_emb[: ev.n_database].T
    rel = protocol.relevance_of(ev)(ev.queries)
    out = semantic_curves(pred, rel, ev.rs, exclude_self=ev.queries)
    return {"ndcg_auc": curve_auc(out["ndcg"], ev.rs), "pcc_auc": curve_auc(out["pcc"], ev.rs)}


def test_embeddings_are_scored_like_the_dense_reference(semantic_eval_data):
    """The shared exact search gives the reference's curves; each query is excluded from its
    own results (with normalised embeddings it would otherwise always rank first)."""
    ev = semantic_eval_data
    emb = np.random.default_rng(3).standard_normal((len(ev.images), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    metrics, curves, n = protocol.retrieval_scores_dense(ev, emb, emb)
    assert n == len(ev.queries) == 20
    want = _reference_aucs(ev, emb, emb)
    assert metrics == pytest.approx(want, abs=1e-6)
    assert curves["pcc_at_r"]["x"][0] == 2.0  # PCC@1 is undefined and left out of the curve


def test_sparse_scoring_is_chunk_invariant_and_the_oracle_is_100(semantic_eval_data):
    ev = semantic_eval_data
    a, ca, na = protocol.retrieval_scores_sparse(ev, ev.tfidf_images, chunk=1)
    b, cb, nb = protocol.retrieval_scores_sparse(ev, ev.tfidf_images, chunk=64)
    assert na == nb == len(ev.queries)
    assert a == pytest.approx(b) and ca == cb
    assert a["ndcg_auc"] == pytest.approx(100.0) and a["pcc_auc"] == pytest.approx(100.0)
    metrics, _, _ = protocol.score_sparse(ev, ev.tfidf_images)
    assert metrics["us"] == pytest.approx(100.0)  # the votes were written from tf-idf


def test_image_plus_text_query_uses_the_query_side_only(semantic_eval_data):
    ev = semantic_eval_data
    x = ev.tfidf_images.toarray().astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    db_emb = noise / np.linalg.norm(noise, axis=1, keepdims=True)  # an uninformative database
    visual, _, _ = protocol.score_embeddings(ev, db_emb, db_emb)
    # queries that carry their own text rank better although the database is unchanged
    query_emb = db_emb + 10.0 * x @ (x[: ev.n_database].T @ db_emb[: ev.n_database])
    with_text, _, _ = protocol.score_embeddings(ev, query_emb, db_emb)
    assert with_text["ndcg_auc"] > visual["ndcg_auc"] + 5.0


def test_no_user_study_means_no_us(semantic_eval_data):
    """A metric that cannot be computed is absent, never invented."""
    import dataclasses

    ev = dataclasses.replace(semantic_eval_data, triplets=[])
    emb = torch.nn.functional.normalize(torch.randn(len(ev.images), 4), dim=1).numpy()
    metrics, _, _ = protocol.score_embeddings(ev, emb, emb)
    assert set(metrics) == {"ndcg_auc", "pcc_auc"}


def test_the_draw_is_fixed_and_the_data_card_is_named(semantic_eval_data, tmp_path):
    ev = semantic_eval_data
    again = protocol.build_eval_data(ev.train, ev.images[:40], [], protocol.EvalConfig(
        n_database=36, n_queries=20, seed=0, r_grid=(1, 2, 5, 10, 20, 35)))  # fmt: skip
    assert len(again.queries) == 20 and again.rs == [1, 2, 5, 10, 20, 35]
    with pytest.raises(FileNotFoundError, match=r"data_cards/visual_genome\.md"):
        protocol.dataset_root(protocol.DataConfig(root="nowhere"), tmp_path)
    with pytest.raises(ValueError, match="r_grid"):
        protocol.r_grid(protocol.EvalConfig(r_grid=(500,)), 36)
