"""Bag-of-words: word counts -> one linear layer to 1024-d (``modules/BoWEncoder.lua``, lines
3-11: ``Linear(input_size, hid_size)`` on the bag).

How the bag was filled (counts or presence, which vocabulary cut) is not in the released code;
capbench counts every non-padding id of the 30-word input (unverified). The vocabulary is the
``WordVocab`` built on the training captions (the paper: "the full dataset vocabulary").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from capbench.models.text_encoders.base import (
    EMBED_DIM,
    REED_INIT_BOUND,
    TEXT_ENCODERS,
    WORD_SEQ_LEN,
    TextEncoder,
    reed_uniform_,
)


def bag_of_ids(ids: Tensor, vocab_size: int) -> Tensor:
    """``(B, L)`` ids -> ``(B, vocab_size - 1)`` counts of ids 1.. (padding is not counted)."""
    counts = torch.zeros(ids.shape[0], vocab_size, device=ids.device)
    counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
    return counts[:, 1:]


class BagOfWordsEncoder(TextEncoder):
    """Word counts -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        out_dim: int = EMBED_DIM,
        seq_len: int = WORD_SEQ_LEN,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        super().__init__("word", vocab_size, out_dim, seq_len)
        self.proj = nn.Linear(vocab_size - 1, out_dim)
        reed_uniform_(self, init_bound)

    def forward(self, ids: Tensor) -> Tensor:
        return self.proj(bag_of_ids(self.prepare(ids), self.vocab_size))


@TEXT_ENCODERS.register("bow")
def bow(vocab_size: int, out_dim: int = EMBED_DIM, **kwargs) -> BagOfWordsEncoder:
    """Bag-of-words over the first 30 words -> Linear -> 1024."""
    return BagOfWordsEncoder(vocab_size, out_dim, **kwargs)
