"""torchmetrics wrappers log exactly the plain functions' numbers, padding duplicates removed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capbench.eval.metrics import default_r_grid, image_text_recall
from capbench.eval.retrieval import l2_normalize, semantic_retrieval_curves
from capbench.eval.torchmetrics_wrappers import RecallAtK, SemanticNDCG


def test_recall_metric_matches_function_across_batches_with_duplicates():
    g = torch.Generator().manual_seed(0)
    img = l2_normalize(torch.randn(10, 6, generator=g))
    owner = torch.arange(10).repeat_interleave(2)
    txt = l2_normalize(img[owner] + 0.8 * torch.randn(20, 6, generator=g))
    metric = RecallAtK(ks=(1, 5))
    for lo, hi in ((0, 4), (4, 10), (0, 2)):  # the last batch repeats records (sampler padding)
        t = torch.nonzero((owner >= lo) & (owner < hi)).reshape(-1)
        metric.update(img[lo:hi], torch.arange(lo, hi), txt[t], t, owner[t])
    got = metric.compute()
    want = image_text_recall(img, txt, owner, (1, 5))
    assert set(got) == set(want)
    for k, v in want.items():
        assert float(got[k]) == pytest.approx(v)


def test_semantic_ndcg_metric_matches_engine():
    g = torch.Generator().manual_seed(1)
    emb = l2_normalize(torch.randn(40, 8, generator=g))
    text = torch.rand(40, 5, generator=g)

    def rel_fn(q_idx: np.ndarray, db_idx: np.ndarray) -> torch.Tensor:
        return text[torch.as_tensor(q_idx)] @ text[torch.as_tensor(db_idx)].T

    metric = SemanticNDCG(rel_fn, n_queries=10)
    order = torch.randperm(40, generator=g)
    for chunk in (order[:15], order[15:], order[:3]):
        metric.update(emb[chunk], chunk)
    got = metric.compute()
    ids = [str(i) for i in range(40)]
    want = semantic_retrieval_curves(emb[:10], emb, lambda p: rel_fn(np.arange(10)[p], np.arange(40)),
                                     default_r_grid(40), query_ids=ids[:10], db_ids=ids)  # fmt: skip
    assert float(got["ndcg_auc"]) == pytest.approx(want["ndcg_auc"])
    assert float(got["pcc_auc"]) == pytest.approx(want["pcc_auc"])
