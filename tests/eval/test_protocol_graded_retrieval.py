"""The graded-retrieval protocol on the tiny scenes benchmark: oracle, chance and folds."""

from __future__ import annotations

import numpy as np
import pytest

from capbench.eval.protocols import graded_retrieval as gr


@pytest.fixture(scope="module")
def graded(tiny_scenes):
    return gr.load_graded_data(gr.DataConfig(), tiny_scenes)


def test_reads_queries_references_and_grades(graded):
    assert len(graded.queries) == 10 and len(graded.references) == 20
    assert graded.grades.shape == (10, 20)
    judged = graded.grades[~np.isnan(graded.grades)]
    assert judged.size and judged.min() >= 0 and judged.max() <= 3
    assert (graded.judged_per_query > 0).all()


def test_oracle_ranking_is_perfect_and_chance_is_not(graded):
    oracle = np.nan_to_num(graded.grades, nan=-1.0)
    perfect = gr.score_similarity(oracle, graded, (5, 10))
    assert perfect["ndcg@5"] == pytest.approx(1.0) and perfect["ndcg_mean"] == pytest.approx(1.0)
    chance = gr.random_ranking_ndcg(graded, (5, 10), draws=10)
    assert chance["ndcg_mean"] < 0.95
    reversed_ = gr.score_similarity(-oracle, graded, (5, 10))
    assert reversed_["ndcg_mean"] < chance["ndcg_mean"]


def test_features_rank_by_cosine(graded):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(10, 8))
    r = rng.normal(size=(20, 8))
    sim = gr.similarity(q, r)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    rn = r / np.linalg.norm(r, axis=1, keepdims=True)
    dist = np.linalg.norm(qn[:, None] - rn[None], axis=2)
    assert (np.argsort(-sim, 1, kind="stable") == np.argsort(dist, 1, kind="stable")).all()
    # scale of a feature does not change its ranking
    assert gr.score_features(q, r, graded) == gr.score_features(3 * q, 0.5 * r, graded)
    with pytest.raises(ValueError, match="8-d but references 4-d"):
        gr.similarity(q, r[:, :4])


def test_folds_partition_queries_and_average():
    folds = gr.query_folds(50, 5)
    assert [f.tolist() for f in folds][1] == list(range(10, 20))
    assert sorted(np.concatenate(folds).tolist()) == list(range(50))
    with pytest.raises(ValueError, match=r"folds must be in 1\.\.3"):
        gr.query_folds(3, 5)
    mean = gr.score_folds([{"ndcg@5": 0.2, "ndcg_mean": 0.4}, {"ndcg@5": 0.4, "ndcg_mean": 0.6}])
    assert mean["ndcg@5"] == pytest.approx(0.3)
    assert mean["ndcg_mean_fold_std"] == pytest.approx(0.1)


def test_missing_benchmark_names_the_data_card(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_cards/graded_retrieval\.md"):
        gr.load_graded_data(gr.DataConfig(root="nope"), tmp_path)
