"""Stemmed tf-idf (Gordo & Larlus's semantic surrogate) and exact sparse top-k neighbours.

Documents are tokenised with a regex (``nltk.word_tokenize`` needs punkt data that cannot be
downloaded), stemmed with NLTK's Snowball stemmer and weighted with scikit-learn's
``TfidfVectorizer``. Vocabulary and idf are fitted on the training split only; words never seen
in training get no weight. Rows are L2-normalised so a dot product is the cosine similarity.

``topk_neighbours`` computes the k most similar items for 80k x 80k images without ever holding
an n x n matrix: sparse products in row blocks, top-k by ``torch.topk`` plus an exact tie repair, with ties
broken by the smaller index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from capbench.atomic import atomic_path
from capbench.data.records import CaptionedImage
from capbench.data.text import regex_tokenize

__all__ = [
    "StemmedTfidf",
    "cached_tfidf",
    "pairwise_similarity",
    "record_document",
    "regex_tokenize",
    "topk_neighbours",
]


IDF_KINDS = ("smooth_plus_one", "classic")


class StemAnalyzer:
    """regex tokens -> Snowball stems, memoised per word (80k VG images repeat few words).

    A module-level class (not a closure) so the fitted vectorizer pickles.
    """

    def __init__(self, language: str = "english", stop_words: Iterable[str] | None = None) -> None:
        self.language = language
        self.stop_words = frozenset(stop_words or ())
        self._init_stemmer()

    def _init_stemmer(self) -> None:
        from nltk.stem.snowball import SnowballStemmer

        self._stemmer = SnowballStemmer(self.language)
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            stem = self._stemmer.stem(word)
            self._cache[word] = stem
        return stem

    def __call__(self, doc: str) -> list[str]:
        stop = self.stop_words
        return [self.stem(w) for w in regex_tokenize(doc) if w not in stop]

    def __getstate__(self) -> dict[str, Any]:
        return {"language": self.language, "stop_words": sorted(self.stop_words)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.language = state["language"]
        self.stop_words = frozenset(state["stop_words"])
        self._init_stemmer()


class SymbolAnalyzer:
    """Whitespace-separated symbols taken whole, unstemmed: WordNet synsets (``tree.n.01``)
    are the terms of the object-annotation histogram, not words."""

    def __call__(self, doc: str) -> list[str]:
        return doc.split()


class StemmedTfidf:
    """Snowball-stemmed tf-idf with L2-normalised float32 rows.

    ``min_df``, ``sublinear_tf`` and ``stop_words`` are passed to scikit-learn; the paper states
    none of them, so the defaults (1, False, none) keep every stemmed word, as its 46,881-word
    vocabulary suggests. ``symbols``: documents are whitespace-separated symbols counted whole
    (the object-annotation histogram over synsets), neither split nor stemmed.

    ``idf``: ``"smooth_plus_one"`` is scikit-learn's ``ln((1 + N) / (1 + df)) + 1``, which gives
    a word found in every document full weight; ``"classic"`` is the textbook ``ln(N / df)``,
    which gives it none.
    """

    def __init__(
        self,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        sublinear_tf: bool = False,
        stop_words: Iterable[str] | None = None,
        language: str = "english",
        symbols: bool = False,
        idf: str = "smooth_plus_one",
    ) -> None:
        if idf not in IDF_KINDS:
            raise ValueError(f"idf must be one of {IDF_KINDS}, got {idf!r}")
        self.idf = idf
        self.analyzer: Any = SymbolAnalyzer() if symbols else StemAnalyzer(language, stop_words)
        self.vectorizer = TfidfVectorizer(
            analyzer=self.analyzer,
            min_df=min_df,
            max_df=max_df,
            sublinear_tf=sublinear_tf,
            smooth_idf=idf == "smooth_plus_one",
            norm="l2",
            dtype=np.float32,
        )
        self._fitted = False

    def fit(self, docs: Iterable[str]) -> StemmedTfidf:
        """Learn vocabulary and idf (call on the TRAINING split only)."""
        self.vectorizer.fit(list(docs))
        if self.idf == "classic":  # scikit-learn's unsmoothed idf is ln(N / df) + 1
            self.vectorizer.idf_ = self.vectorizer.idf_ - 1.0
        self._fitted = True
        return self

    def transform(self, docs: Iterable[str]) -> sp.csr_matrix:
        """L2-normalised tf-idf rows (float32 CSR); a document with no known word is a zero row."""
        if not self._fitted:
            raise RuntimeError("StemmedTfidf.transform called before fit")
        X = self.vectorizer.transform(list(docs))
        return sp.csr_matrix(X, dtype=np.float32)

    def fit_transform(self, docs: Iterable[str]) -> sp.csr_matrix:
        docs = list(docs)
        return self.fit(docs).transform(docs)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vectorizer.vocabulary_) if self._fitted else 0

    @property
    def vocabulary(self) -> dict[str, int]:
        """Stem -> column."""
        return dict(self.vectorizer.vocabulary_)

    def stem(self, word: str) -> str:
        if isinstance(self.analyzer, SymbolAnalyzer):
            return word
        return self.analyzer.stem(word.lower())

    def save(self, path: str | Path) -> None:
        """Pickle with joblib, written atomically (temp file + rename)."""
        with atomic_path(path) as tmp:
            joblib.dump(self, tmp)

    @classmethod
    def load(cls, path: str | Path) -> StemmedTfidf:
        obj = joblib.load(path)
        if not isinstance(obj, cls):
            raise TypeError(f"{path}: expected a pickled StemmedTfidf, found {type(obj).__name__}")
        return obj


# --------------------------------------------------------------------------- documents


def _symbol(text: str) -> str:
    """One whole symbol: lower case, inner whitespace joined by ``_`` ("Street Sign" ->
    "street_sign")."""
    return "_".join(str(text).lower().split())


def _object_terms(obj: Any) -> list[str]:
    """Symbols of one object annotation: its WordNet synsets when present (``tree.n.01``, kept
    whole: the paper counts "how many objects of each synset appear"), else its names."""
    if isinstance(obj, str):
        return [_symbol(obj)]
    if isinstance(obj, dict):
        synsets = obj.get("synsets") or []
        if synsets:
            return [_symbol(s) for s in synsets]
        names = obj.get("names")
        if names is None:
            names = [obj["name"]] if "name" in obj else []
        return [_symbol(n) for n in names]
    raise TypeError(f"object annotation must be a str or dict, got {type(obj).__name__}")


def record_document(record: CaptionedImage, field: str = "regions") -> str:
    """The text of one image for tf-idf.

    ``regions``: all region phrases joined (Gordo's surrogate, ~50 per VG image);
    ``captions``: the sentence captions; ``objects``: object annotations from
    ``record.meta["objects"]`` (VG objects.json entries, or plain names) for the
    "object annotations tf-idf" baseline.
    """
    if field == "regions":
        parts = [r.phrase for r in record.regions]
    elif field == "captions":
        parts = list(record.captions)
    elif field == "objects":
        objects = record.meta.get("objects")
        if objects is None:
            raise KeyError(
                f"record {record.image_id}: field='objects' needs record.meta['objects'] "
                "(the reader must be asked to load objects.json)"
            )
        # whitespace-separated whole symbols, for StemmedTfidf(symbols=True)
        return " ".join(t for obj in objects for t in _object_terms(obj))
    else:
        raise ValueError(f"record_document: field must be regions|captions|objects, got {field!r}")
    return " . ".join(parts)


# --------------------------------------------------------------------------- similarity


def pairwise_similarity(X: sp.spmatrix, Y: sp.spmatrix | None = None) -> np.ndarray:
    """Dense X @ Y.T (float32). For small blocks only: it is n_x x n_y."""
    Y = X if Y is None else Y
    return np.asarray((sp.csr_matrix(X) @ sp.csr_matrix(Y).T).toarray(), dtype=np.float32)


def _select_topk(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k per row of a dense block: largest value first, ties by smaller column."""
    # torch.topk finds the k largest values several times faster than np.argpartition; which
    # members of a tie at the boundary it returns is unspecified, so those rows are redone.
    top_vals, top_idx = torch.topk(torch.from_numpy(S), k, dim=1, largest=True, sorted=False)
    part = top_idx.numpy()
    thr = top_vals.min(dim=1).values.numpy()  # the k-th largest value of each row
    # Rows where topk may have picked arbitrary members of a tie at the boundary.
    ambiguous = np.flatnonzero(np.count_nonzero(thr[:, None] <= S, axis=1) > k)
    if ambiguous.size:
        sub = S[ambiguous]
        t = thr[ambiguous, None]
        above = sub > t
        eq = sub == t
        need = k - np.count_nonzero(above, axis=1)[:, None]
        keep = above | (eq & (np.cumsum(eq, axis=1) <= need))
        cols = np.nonzero(keep)[1].reshape(len(ambiguous), k)
        part[ambiguous] = cols
    vals = np.take_along_axis(S, part, axis=1)
    # Sort by (-value, column): lexsort's last key is primary.
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx.astype(np.int64), np.take_along_axis(vals, order, axis=1).astype(np.float32)


def topk_neighbours(
    X: sp.spmatrix,
    k: int,
    Y: sp.spmatrix | None = None,
    exclude_self: bool = True,
    block_size: int = 4096,
    query_ids: Sequence[int] | np.ndarray | None = None,
    max_block_bytes: int = 32 * 2**20,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``Y`` (default ``X``) most similar to each row of ``X`` by dot product.

    Returns ``(indices int64 [n, k], scores float32 [n, k])``, best first, ties broken by the
    smaller index, so results do not depend on ``block_size``. ``exclude_self`` drops row i's own
    column: i when ``Y`` is omitted, or ``query_ids[i]`` (the column of ``Y`` that is query i)
    when ``Y`` is given. Work is done in row blocks of at most ``block_size`` rows, also capped so
    a dense block stays under ``max_block_bytes``; memory is O(block x n_y), never n x n.
    The 32 MiB default keeps blocks small enough for the allocator to reuse freed memory:
    with 256 MiB blocks as much time went to page faults as to arithmetic.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    same = Y is None or Y is X
    Yc = X if Y is None else sp.csr_matrix(Y, dtype=np.float32)
    if X.shape[1] != Yc.shape[1]:
        raise ValueError(f"topk_neighbours: X has {X.shape[1]} columns but Y has {Yc.shape[1]}")
    n, m = X.shape[0], Yc.shape[0]
    self_cols: np.ndarray | None = None
    if exclude_self:
        if query_ids is not None:
            self_cols = np.asarray(query_ids, dtype=np.int64)
            if self_cols.shape != (n,):
                raise ValueError(f"topk_neighbours: query_ids must have {n} entries")
            if self_cols.size and (self_cols.min() < 0 or self_cols.max() >= m):
                raise ValueError("topk_neighbours: query_ids out of range of Y's rows")
        elif same:
            self_cols = np.arange(n, dtype=np.int64)
        else:
            raise ValueError(
                "topk_neighbours: exclude_self with a separate Y needs query_ids (the column of "
                "Y matching each row of X); pass exclude_self=False for disjoint sets"
            )
    available = m - (1 if self_cols is not None else 0)
    if not 1 <= k <= available:
        raise ValueError(f"topk_neighbours: k={k} but only {available} candidates per row")
    rows = max(1, min(block_size, max_block_bytes // max(1, 4 * m)))
    YT = Yc.T.tocsr()
    out_idx = np.empty((n, k), dtype=np.int64)
    out_val = np.empty((n, k), dtype=np.float32)
    starts = range(0, n, rows)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="tf-idf top-k", unit="block")
    for start in starts:
        stop = min(n, start + rows)
        S = (X[start:stop] @ YT).toarray()
        if S.dtype != np.float32:
            S = S.astype(np.float32)
        if self_cols is not None:
            S[np.arange(stop - start), self_cols[start:stop]] = -np.inf
        out_idx[start:stop], out_val[start:stop] = _select_topk(S, k)
    return out_idx, out_val


# --------------------------------------------------------------------------- cache


def _docs_digest(h: Any, docs: Iterable[str]) -> int:
    count = 0
    for doc in docs:
        data = doc.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
        count += 1
    h.update(count.to_bytes(8, "little"))
    return count


def cached_tfidf(
    records_fit: Sequence[CaptionedImage],
    records_all: Sequence[CaptionedImage],
    field: str = "regions",
    cache_dir: str | Path | None = None,
    **tfidf_options: Any,
) -> tuple[StemmedTfidf, sp.csr_matrix]:
    """Fit on ``records_fit`` (the training split), transform ``records_all``; cache both.

    The cache key is a SHA-256 of the field, the options and every document's text (fit and
    all), so any change to the data or options recomputes. Default folder:
    ``capbench.paths.cache_root() / "tfidf"``.
    """
    from capbench.cache_entry import read_cached
    from capbench.paths import cache_root

    cache = Path(cache_dir) if cache_dir is not None else cache_root() / "tfidf"
    fit_docs = [record_document(r, field) for r in records_fit]
    all_docs = [record_document(r, field) for r in records_all]
    h = hashlib.sha256()
    h.update(f"v2|{field}|{sorted(tfidf_options.items())!r}|".encode())
    _docs_digest(h, fit_docs)
    _docs_digest(h, all_docs)
    key = h.hexdigest()[:24]
    model_path = cache / f"tfidf-{key}.joblib"
    matrix_path = cache / f"tfidf-{key}.npz"
    cached = read_cached(
        (model_path, matrix_path),
        lambda: (StemmedTfidf.load(model_path), sp.csr_matrix(sp.load_npz(matrix_path))),
    )
    if cached is not None:
        return cached
    # object annotations are a histogram of whole synsets, never split into words
    model = StemmedTfidf(**tfidf_options, symbols=field == "objects").fit(fit_docs)
    X = model.transform(all_docs)
    with atomic_path(matrix_path, suffix=".npz") as tmp:
        sp.save_npz(tmp, X)
    model.save(model_path)
    return model, X
