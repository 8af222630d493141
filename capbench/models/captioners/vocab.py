"""The captioners' vocabulary: a ``WordVocab`` with ``<bos>``/``<eos>``, built from training
text, stored in a checkpoint as its token list, and the few conversions the models need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from capbench.data.text import WordVocab
from capbench.models.captioners.decoder import SpecialIds


def build_vocab(texts: Iterable[str], min_count: int) -> WordVocab:
    """Words seen at least ``min_count`` times in ``texts`` (the rest map to ``<unk>``)."""
    return WordVocab.build(texts, min_count=min_count)


def special_ids(vocab: WordVocab) -> SpecialIds:
    """``<pad>``, ``<bos>``, ``<eos>`` ids (the default specials include all three)."""
    if vocab.bos_id is None or vocab.eos_id is None:
        raise ValueError("the captioner vocabulary needs <bos> and <eos> specials")
    return SpecialIds(pad=vocab.pad_id, bos=vocab.bos_id, eos=vocab.eos_id)


def encode_texts(vocab: WordVocab, texts: Sequence[str], max_len: int) -> Tensor:
    """``(N, T)`` word ids, cut at ``max_len`` words and padded to the longest (T >= 1)."""
    ids = [vocab.encode(t, max_len=None)[:max_len] for t in texts]
    width = max([1, *map(len, ids)])
    out = torch.full((len(ids), width), vocab.pad_id, dtype=torch.long)
    for i, row in enumerate(ids):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def decode(vocab: WordVocab, ids: Iterable[int]) -> str:
    """Words of a generated sequence (specials dropped)."""
    return vocab.decode(ids)
