"""Stemmed tf-idf and exact block-wise top-k neighbours, against hand computation and brute force."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.sparse as sp

from capbench.data import tfidf as tfidf_module
from capbench.data.records import CaptionedImage, Region
from capbench.data.tfidf import (
    StemmedTfidf,
    cached_tfidf,
    pairwise_similarity,
    record_document,
    topk_neighbours,
)

TRAIN_DOCS = [
    "a red circle . two circles",
    "a blue square",
    "red squares and a circle",
]


def test_stemming_merges_inflections():
    model = StemmedTfidf().fit(["circles", "circle", "running runs"])
    assert model.stem("Circles") == model.stem("circle") == "circl"
    assert model.vocabulary_size == 2  # {circl, run}
    X = model.transform(["circles", "circle"])
    assert (X[0] != X[1]).nnz == 0


def test_tfidf_matches_hand_computation_and_idf_is_train_only():
    model = StemmedTfidf().fit(TRAIN_DOCS)
    # test-only word "zebra" gets no column and no weight
    assert "zebra" not in model.vocabulary
    X = model.transform(["zebra circles red", "zebra"])
    assert X.dtype == np.float32 and sp.isspmatrix_csr(X)
    assert X[1].nnz == 0
    # hand tf-idf (sklearn's smooth idf: ln((1+n)/(1+df)) + 1), n = 3 training docs
    n = 3
    idf_circl = math.log((1 + n) / (1 + 2)) + 1  # "circle(s)" in docs 0 and 2
    idf_red = math.log((1 + n) / (1 + 2)) + 1
    raw = np.array([1 * idf_circl, 1 * idf_red])
    expected = raw / np.linalg.norm(raw)
    vocab = model.vocabulary
    row = X[0].toarray().ravel()
    assert row[vocab["circl"]] == pytest.approx(expected[0], rel=1e-6)
    assert row[vocab["red"]] == pytest.approx(expected[1], rel=1e-6)
    assert np.count_nonzero(row) == 2
    # the training doc "a red circle . two circles": tf(circl) = 2
    Xt = model.transform(TRAIN_DOCS[:1]).toarray().ravel()
    idf_a = math.log(4 / 4) + 1
    idf_two = math.log(4 / 2) + 1
    raw0 = {"a": idf_a, "red": idf_red, "circl": 2 * idf_circl, "two": idf_two}
    norm0 = math.sqrt(sum(v * v for v in raw0.values()))
    for word, value in raw0.items():
        assert Xt[vocab[word]] == pytest.approx(value / norm0, rel=1e-6)


def test_rows_are_l2_normalised(tmp_path):
    model = StemmedTfidf()
    X = model.fit_transform([*TRAIN_DOCS, "", "blue blue blue"])
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1, 1, 1, 0, 1], atol=1e-6)
    model.save(tmp_path / "m.joblib")
    again = StemmedTfidf.load(tmp_path / "m.joblib")
    assert (again.transform(TRAIN_DOCS) != model.transform(TRAIN_DOCS)).nnz == 0


def _record(i: int, **kw) -> CaptionedImage:
    return CaptionedImage(image_id=str(i), image_path=f"/nonexistent/{i}.jpg", split="train", **kw)


def test_record_document_fields():
    rec = _record(
        1,
        captions=["A man rides a horse.", "A rider on a horse"],
        regions=[Region(0, 0, 5, 5, "brown horse"), Region(1, 1, 2, 2, "man wearing a hat")],
        meta={
            "objects": [{"names": ["horse"], "synsets": ["horse.n.01"]}, {"name": "hat"}, "tree"]
        },
    )
    assert record_document(rec, "regions") == "brown horse . man wearing a hat"
    assert record_document(rec, "captions") == "A man rides a horse. . A rider on a horse"
    assert record_document(rec, "objects") == "horse.n.01 hat tree"
    with pytest.raises(KeyError, match="meta"):
        record_document(_record(2), "objects")
    with pytest.raises(ValueError, match="field"):
        record_document(rec, "words")


def _objects(i: int, synsets: list[str]) -> CaptionedImage:
    return _record(i, meta={"objects": [{"names": [s.split(".")[0]], "synsets": [s]}
                                        for s in synsets]})  # fmt: skip


def test_object_histogram_counts_whole_synsets(tmp_path):
    """Gordo & Larlus: "counting how many objects of each synset appear in that image", tf-idf
    weighted and L2-normalised. Synsets are symbols: tree.n.01 never shares a term with
    car.n.01 (no "n" or "01" tokens), so images with no synset in common score exactly 0."""
    import math

    from capbench.data.tfidf import cached_tfidf

    a = _objects(0, ["tree.n.01", "tree.n.01", "car.n.01"])
    b = _objects(1, ["tree.n.01"])
    c = _objects(2, ["dog.n.01", "cat.n.01"])
    model, x = cached_tfidf([a, b, c], [a, b, c], field="objects", cache_dir=tmp_path)
    assert sorted(model.vocabulary) == ["car.n.01", "cat.n.01", "dog.n.01", "tree.n.01"]
    sim = (x @ x.T).toarray()
    assert sim[0, 2] == 0.0 and sim[1, 2] == 0.0
    # b's objects are a subset of a's; scikit-learn's idf: ln((1 + n) / (1 + df)) + 1, n = 3
    idf_tree, idf_car = math.log(4 / 3) + 1, math.log(4 / 2) + 1
    want = 2 * idf_tree / math.hypot(2 * idf_tree, idf_car)
    assert sim[0, 1] == pytest.approx(want, rel=1e-6)


def _brute_force(X, Y, k, exclude_self):
    S = (X @ Y.T).toarray().astype(np.float64)
    out_i, out_v = [], []
    for i in range(S.shape[0]):
        cands = [(-S[i, j], j) for j in range(S.shape[1]) if not (exclude_self and i == j)]
        best = sorted(cands)[:k]
        out_i.append([j for _, j in best])
        out_v.append([-v for v, _ in best])
    return np.array(out_i), np.array(out_v)


def _tied_sparse(n, d, seed):
    """Few non-zeros from a tiny set of values: many exact ties, zero rows, duplicate rows."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, random_state=rng, format="csr", dtype=np.float32)
    X.data = rng.choice(np.array([0.5, 1.0], dtype=np.float32), size=X.nnz)
    X = X.tolil()
    X[3] = X[7]  # duplicates tie exactly
    X[5] = 0  # a zero row: all its similarities tie at 0
    return sp.csr_matrix(X)


@pytest.mark.parametrize("block_size", [1, 7, 64, 4096])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_topk_equals_brute_force_with_ties(block_size, exclude_self):
    X = _tied_sparse(60, 12, seed=block_size)
    k = 9
    idx, val = topk_neighbours(X, k, exclude_self=exclude_self, block_size=block_size)
    ref_i, ref_v = _brute_force(X, X, k, exclude_self)
    assert idx.dtype == np.int64 and val.dtype == np.float32 and idx.shape == (60, k)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(val, ref_v, rtol=1e-6)
    if exclude_self:
        assert not (idx == np.arange(60)[:, None]).any()


def test_topk_against_separate_database_and_query_ids():
    rng = np.random.default_rng(3)
    Y = _tied_sparse(40, 10, seed=4)
    rows = rng.choice(40, size=15, replace=False)
    X = Y[rows]
    idx, _val = topk_neighbours(X, 5, Y=Y, exclude_self=False, block_size=4)
    S = (X @ Y.T).toarray()
    for i in range(15):
        expected = sorted(range(40), key=lambda j: (-S[i, j], j))[:5]
        assert idx[i].tolist() == expected
    idx2, _ = topk_neighbours(X, 5, Y=Y, exclude_self=True, query_ids=rows, block_size=4)
    for i, q in enumerate(rows):
        expected = [j for j in sorted(range(40), key=lambda j: (-S[i, j], j)) if j != q][:5]
        assert idx2[i].tolist() == expected
    with pytest.raises(ValueError, match="query_ids"):
        topk_neighbours(X, 5, Y=Y)
    with pytest.raises(ValueError, match="candidates"):
        topk_neighbours(Y, 40)


def test_topk_respects_memory_cap():
    X = _tied_sparse(50, 10, seed=9)
    a = topk_neighbours(X, 4, block_size=4096)
    b = topk_neighbours(X, 4, block_size=4096, max_block_bytes=4 * 50 * 3)  # 3-row blocks
    np.testing.assert_array_equal(a[0], b[0])


def test_pairwise_similarity_is_dense_dot_product():
    X = _tied_sparse(9, 5, seed=1)
    np.testing.assert_allclose(pairwise_similarity(X), X.toarray() @ X.toarray().T, rtol=1e-6)


def test_cached_tfidf_reuses_cache_and_keys_on_content(tmp_path, monkeypatch):
    train = [_record(i, regions=[Region(0, 0, 1, 1, d)]) for i, d in enumerate(TRAIN_DOCS)]
    test = [_record(9, regions=[Region(0, 0, 1, 1, "a zebra near a circle")])]
    model, X = cached_tfidf(train, train + test, "regions", tmp_path)
    assert X.shape == (4, model.vocabulary_size)
    assert len(list(tmp_path.glob("tfidf-*.npz"))) == 1

    def no_refit(self, docs):
        raise AssertionError("refitted despite a cache hit")

    monkeypatch.setattr(tfidf_module.StemmedTfidf, "fit", no_refit)
    model2, X2 = cached_tfidf(train, train + test, "regions", tmp_path)
    assert (X2 != X).nnz == 0 and model2.vocabulary == model.vocabulary
    monkeypatch.undo()
    changed = [_record(9, regions=[Region(0, 0, 1, 1, "a red zebra")])]
    _, X3 = cached_tfidf(train, train + changed, "regions", tmp_path)
    assert len(list(tmp_path.glob("tfidf-*.npz"))) == 2
    assert (X3[3] != X[3]).nnz > 0


@pytest.mark.slow
def test_topk_perf_20k_zipf_documents():
    """20k VG-like documents (~110 distinct stems each, Zipf vocabulary), k = 32.

    Measured on the shared 2-core dev box (CPU time, 32 MiB blocks): 20k in 11 s; 80k x 80k
    (6.4e9 similarities, the full VG training set) in 178 s CPU, peak RSS 1.1 GB including
    the synthetic data.
    """
    n, V, per_doc = 20_000, 40_000, 150
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, V + 1)
    p /= p.sum()
    rows = np.repeat(np.arange(n), per_doc)
    cols = rng.choice(V, size=n * per_doc, p=p)
    X = sp.csr_matrix((rng.random(n * per_doc).astype(np.float32), (rows, cols)), shape=(n, V))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    X = sp.csr_matrix(sp.diags(1 / norms) @ X, dtype=np.float32)
    start = time.perf_counter()
    idx, _val = topk_neighbours(X, 32)
    elapsed = time.perf_counter() - start
    sample = np.random.default_rng(1).choice(n, size=20, replace=False)
    S = (X[sample] @ X.T).toarray()
    S[np.arange(20), sample] = -np.inf
    for r, i in enumerate(sample):
        expected = sorted(range(n), key=lambda j: (-S[r, j], j))[:32]
        assert idx[i].tolist() == expected
    assert elapsed < 120, f"top-k over 20k documents took {elapsed:.1f} s"
