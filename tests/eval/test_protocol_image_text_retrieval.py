"""The image-text retrieval protocol against the reference Recall@K functions of
``capbench.eval.metrics`` and, for codes, against faiss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capbench.data.records import CaptionedImage
from capbench.eval.metrics import coco_1k_5k, image_text_recall, recall_at_k
from capbench.eval.protocols.image_text_retrieval import (
    EvalConfig,
    build_eval_data,
    bytes_per_item,
    faiss_pq_search,
    recall_both_ways,
    score_embeddings,
    top_k,
)


def _data(n_img=40, per=3, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n_img, dim, generator=g)
    owner = torch.arange(n_img).repeat_interleave(per)
    txt = img[owner] + 1.2 * torch.randn(n_img * per, dim, generator=g)
    return img, txt, owner


def test_dot_measure_equals_the_reference_recall():
    img, txt, owner = _data()
    ours = recall_both_ways(img, txt, owner, measure="dot")
    ref = image_text_recall(img, txt, owner)
    assert ours == pytest.approx(ref)
    assert 0 < ours["i2t_r1"] < 100  # a real spread, not a trivial case


def test_l2_measure_ranks_by_euclidean_distance():
    img, txt, owner = _data(seed=1)
    ours = recall_both_ways(img, txt, owner, measure="l2")
    neg_dist = -torch.cdist(img.double(), txt.double())
    gt = owner.unsqueeze(0) == torch.arange(img.shape[0]).unsqueeze(1)
    i2t = recall_at_k(neg_dist, gt)
    t2i = recall_at_k(neg_dist.T, gt.T)
    assert [ours["i2t_r1"], ours["i2t_r5"], ours["i2t_r10"]] == pytest.approx(list(i2t.values()))
    assert [ours["t2i_r1"], ours["t2i_r5"], ours["t2i_r10"]] == pytest.approx(list(t2i.values()))
    # unnormalised embeddings: L2 and dot rankings differ, so the measure matters
    scaled = img * torch.linspace(0.2, 3.0, img.shape[0]).unsqueeze(1)
    assert recall_both_ways(scaled, txt, owner, measure="l2") != recall_both_ways(
        scaled, txt, owner, measure="dot"
    )


def test_folds_are_the_coco_1k_protocol():
    img, txt, owner = _data(n_img=50, seed=2)
    records = [
        CaptionedImage(f"i{i}", f"/x/{i}.jpg", "test", captions=[f"c{i}-{j}" for j in range(3)])
        for i in range(50)
    ]
    ev = build_eval_data(records, EvalConfig(folds=5, fold_size=10))
    assert np.array_equal(ev.caption_image, owner.numpy())
    ours = score_embeddings(ev, img, txt, EvalConfig(folds=5, fold_size=10), measure="dot")
    ref = coco_1k_5k(img, txt, owner, fold_size=10)
    for key, value in ref["1k"].items():
        assert ours[f"{key}_1k"] == pytest.approx(value), key
    for key, value in ref["5k"].items():
        assert ours[f"{key}_all"] == pytest.approx(value), key
    with pytest.raises(ValueError, match="folds"):
        score_embeddings(ev, img, txt, EvalConfig(folds=6, fold_size=10))


def test_a_record_without_captions_is_an_error_naming_it():
    recs = [CaptionedImage("a", "/x/a.jpg", "test", captions=[])]
    with pytest.raises(ValueError, match="test record a"):
        build_eval_data(recs, EvalConfig())


def test_faiss_pq_index_finds_what_exact_search_on_the_codes_finds():
    rng = np.random.default_rng(0)
    m, k, dsub = 4, 16, 3
    books = rng.standard_normal((m, k, dsub)).astype(np.float32)
    codes = rng.integers(0, k, size=(200, m))
    recon = books[np.arange(m)[None, :], codes].reshape(200, m * dsub)
    queries = rng.standard_normal((30, m * dsub)).astype(np.float32)
    dist, idx = faiss_pq_search(books, codes, queries, 5)
    exact = top_k(queries, recon, 5, "l2").numpy()
    exact_d = ((queries[:, None, :] - recon[exact]) ** 2).sum(-1)
    np.testing.assert_allclose(dist, exact_d, rtol=1e-4, atol=1e-4)
    # identical top-5 sets (random data: no ties at the boundary)
    assert (np.sort(idx, 1) == np.sort(exact, 1)).all()


def test_bytes_per_item():
    assert bytes_per_item(1024) == 4096.0
    assert bytes_per_item(1024, 8, 256) == 8.0
    assert bytes_per_item(64, 4, 16) == 2.0
