"""What every text encoder shares: the registry, the ``TextEncoder`` base and its input rules.

Reed et al. 2016 compare nine ways of embedding a description into the 1024-d space of their
image features. They all take token ids from a capbench tokenizer (``CharAlphabet`` for the
character models, ``WordVocab`` for the word models; both use id 0 for padding) and return one
``(B, out_dim)`` vector per text. The facts below come from the official Torch code,
``reedscot/cvpr2016``:

- inputs are cut or zero-padded to 201 characters / 30 words (the paper; ``doc_length 201`` in
  ``train_sje_hybrid.lua`` line 20, and the "30 x alphasize" comments of the word modules);
- the models read one-hot inputs in which padding is an all-zero column: the loader sets one
  entry per character and stops at the first 0 (``util/MultimodalMinibatchLoaderCaption.lua``
  lines 83-101), so id ``k`` is channel ``k - 1`` and there is no padding channel;
- every parameter starts uniform in (-0.08, 0.08) (``train_sje_hybrid.lua`` lines 111-113).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from capbench.registry import Registry

PAD_ID = 0  # CharAlphabet and WordVocab both pad with id 0 (capbench/data/text.py)
CHAR_SEQ_LEN = 201
WORD_SEQ_LEN = 30
EMBED_DIM = 1024  # GoogLeNet pooling units: every text embedding matches them
REED_INIT_BOUND = 0.08


class TextEncoder(nn.Module):
    """Token ids ``(B, L)`` -> embeddings ``(B, out_dim)``.

    ``level`` says which tokenizer feeds it ("char", "word", or "class" for the attribute
    baseline whose single token is the class index); ``seq_len`` is the length inputs are cut
    or padded to (None when the encoder does not read a sequence).
    """

    def __init__(self, level: str, vocab_size: int, out_dim: int, seq_len: int | None) -> None:
        super().__init__()
        if level not in ("char", "word", "class"):
            raise ValueError(f"{type(self).__name__}: unknown level {level!r}")
        if vocab_size < 2:
            raise ValueError(f"{type(self).__name__}: vocab_size must be >= 2, got {vocab_size}")
        if out_dim < 1:
            raise ValueError(f"{type(self).__name__}: out_dim must be >= 1, got {out_dim}")
        self.level = level
        self.vocab_size = vocab_size
        self.out_dim = out_dim
        self.seq_len = seq_len

    def prepare(self, ids: Tensor) -> Tensor:
        """Check ``ids`` (integers in ``[0, vocab_size)``, shape ``(B, L)``) and cut / right-pad
        them to ``seq_len``, as Reed's fixed-length inputs are."""
        if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"{type(self).__name__}: expected integer token ids of shape (B, L), "
                f"got {ids.dtype} {tuple(ids.shape)}"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(
                f"{type(self).__name__}: token ids must be in [0, {self.vocab_size}), found "
                f"[{int(ids.min())}, {int(ids.max())}] (is the encoder built for this tokenizer?)"
            )
        ids = ids.long()
        if self.seq_len is None:
            return ids
        length = ids.shape[1]
        if length >= self.seq_len:
            return ids[:, : self.seq_len]
        return nn.functional.pad(ids, (0, self.seq_len - length), value=PAD_ID)


def one_hot(ids: Tensor, vocab_size: int) -> Tensor:
    """``(B, L)`` ids -> ``(B, L, vocab_size - 1)`` floats; padding (id 0) is all zeros."""
    return nn.functional.one_hot(ids, vocab_size)[..., 1:].float()


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values (B, T, D)`` over the steps where ``mask (B, T)`` is true; an all-false
    row gives zeros (an empty text)."""
    weights = mask.to(values.dtype).unsqueeze(-1)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def reed_uniform_(module: nn.Module, bound: float | None = REED_INIT_BOUND) -> None:
    """Every parameter uniform in ``(-bound, bound)``, as ``params:uniform(-0.08, 0.08)`` does
    to the flattened parameters of both encoders; ``None`` keeps PyTorch's initialisation."""
    if bound is None:
        return
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-bound, bound)


Factory = Callable[..., TextEncoder]
TEXT_ENCODERS: Registry[Factory] = Registry("text encoder")
