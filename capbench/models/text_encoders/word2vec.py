"""The word2vec baseline: the average of fixed word vectors, then one linear layer to 1024-d.

The paper averages the word2vec vectors of a description's words ("a strong baseline, in
practice similar to bag of words"); ``modules/W2VEncoder.lua`` (lines 3-11) is the trained part,
a single ``Linear(input_size, hid_size)`` on that average. The vectors stay fixed.

Vectors come from a local file (gensim ``KeyedVectors.save`` output, or the word2vec binary /
text formats; nothing is downloaded) or are trained with gensim's ``Word2Vec`` on the training
captions. Which vectors Reed used (pretrained or trained on the descriptions) is unverified.
Words without a vector (and padding) are left out of the average; a text with none gives the
bias of the linear layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from capbench.data.text import WordVocab, regex_tokenize
from capbench.models.text_encoders.base import (
    EMBED_DIM,
    PAD_ID,
    REED_INIT_BOUND,
    TEXT_ENCODERS,
    WORD_SEQ_LEN,
    TextEncoder,
    masked_mean,
    reed_uniform_,
)

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

WORD2VEC_DIM = 300  # the usual word2vec size (GoogleNews vectors); unverified for Reed
_TEXT_SUFFIXES = (".txt", ".vec", ".txt.gz", ".vec.gz")
_BINARY_SUFFIXES = (".bin", ".bin.gz")


def load_keyed_vectors(path: str | Path) -> KeyedVectors:
    """Word vectors from a local file: gensim's own format (``.kv``, ``.model``, any other
    suffix), the word2vec binary format (``.bin``) or its text format (``.txt`` / ``.vec``)."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: word vectors file not found")
    name = path.name.lower()
    try:
        if name.endswith(_TEXT_SUFFIXES):
            return KeyedVectors.load_word2vec_format(str(path), binary=False)
        if name.endswith(_BINARY_SUFFIXES):
            return KeyedVectors.load_word2vec_format(str(path), binary=True)
        loaded = KeyedVectors.load(str(path))
    except Exception as err:  # gensim raises many kinds (ValueError, UnpicklingError, EOF...)
        raise ValueError(
            f"{path}: not a readable word-vector file (expected gensim KeyedVectors, or word2vec "
            f"format with suffix {'/'.join(_TEXT_SUFFIXES + _BINARY_SUFFIXES)}): {err}"
        ) from None
    wv = getattr(loaded, "wv", loaded)  # a saved full Word2Vec model holds its vectors in .wv
    if not isinstance(wv, KeyedVectors):
        raise ValueError(f"{path}: holds a {type(loaded).__name__}, not word vectors")
    return wv


def train_keyed_vectors(
    texts: Iterable[str],
    dim: int = WORD2VEC_DIM,
    seed: int = 0,
    epochs: int = 5,
    window: int = 5,
    min_count: int = 1,
) -> KeyedVectors:
    """gensim ``Word2Vec`` (skip-gram off, i.e. CBOW, its default) on ``texts``, tokenised as
    ``WordVocab`` tokenises them. One worker thread, so the vectors depend on ``seed`` only."""
    from gensim.models import Word2Vec

    sentences = [tokens for tokens in (regex_tokenize(t) for t in texts) if tokens]
    if not sentences:
        raise ValueError("train_keyed_vectors: no training text with a word in it")
    model = Word2Vec(
        sentences,
        vector_size=dim,
        window=window,
        min_count=min_count,
        seed=seed,
        epochs=epochs,
        workers=1,
    )
    return model.wv


def vocab_vectors(vectors: KeyedVectors, vocab: WordVocab) -> tuple[Tensor, Tensor]:
    """``(vocab_size, dim)`` float vectors for the vocabulary's ids and a ``(vocab_size,)`` mask
    of the ids that have one (specials never do)."""
    table = np.zeros((len(vocab), vectors.vector_size), dtype=np.float32)
    known = np.zeros(len(vocab), dtype=bool)
    specials = set(vocab.special_ids)
    for idx, word in enumerate(vocab.itos):
        if idx not in specials and word in vectors.key_to_index:
            table[idx] = vectors[word]
            known[idx] = True
    if not known.any():
        raise ValueError("vocab_vectors: no word of the vocabulary has a vector")
    return torch.from_numpy(table), torch.from_numpy(known)


class Word2VecAverage(TextEncoder):
    """Fixed vectors of the known words, averaged -> Linear."""

    def __init__(
        self,
        vectors: Tensor,
        known: Tensor | None = None,
        out_dim: int = EMBED_DIM,
        seq_len: int = WORD_SEQ_LEN,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        if vectors.dim() != 2:
            raise ValueError(f"Word2VecAverage: vectors must be (vocab, dim), got {vectors.shape}")
        super().__init__("word", vectors.shape[0], out_dim, seq_len)
        if known is None:
            known = vectors.abs().sum(1) > 0
        if known.shape != (vectors.shape[0],):
            raise ValueError("Word2VecAverage: known must have one flag per vector")
        known = known.clone().bool()
        known[PAD_ID] = False
        self.register_buffer("vectors", vectors.detach().float().clone())
        self.register_buffer("known", known)
        self.proj = nn.Linear(vectors.shape[1], out_dim)
        reed_uniform_(self, init_bound)  # buffers (the vectors) are not parameters: untouched

    def forward(self, ids: Tensor) -> Tensor:
        ids = self.prepare(ids)
        return self.proj(masked_mean(self.vectors[ids], self.known[ids]))


@TEXT_ENCODERS.register("word2vec_avg")
def word2vec_avg(
    vocab_size: int, out_dim: int = EMBED_DIM, *, vectors: Tensor, **kwargs
) -> Word2VecAverage:
    """word2vec average -> Linear -> 1024; ``vectors`` from ``vocab_vectors``."""
    if vectors.shape[0] != vocab_size:
        raise ValueError(
            f"word2vec_avg: {vectors.shape[0]} vectors for a vocabulary of {vocab_size}"
        )
    return Word2VecAverage(vectors, out_dim=out_dim, **kwargs)
