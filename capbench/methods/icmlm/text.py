"""ICMLM's frozen text side: a pretrained BERT-style encoder from a local folder, the concept
positions of a caption, and the encoder's token states of a caption with one concept masked.

The encoder is never trained, so its states for a (caption, masked position) pair never change:
they are memoised (``cache_text_states``), and a run over a few thousand scenes captions encodes
each pair once. Its weights are not part of the LightningModule's state dict (checkpoints stay
small; the encoder is reloaded from its folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from capbench.models.pretrained_text import load_frozen_model, load_tokenizer, resolve_text_encoder

__all__ = [
    "FrozenTextEncoder",
    "concept_positions",
    "load_tokenizer",
    "resolve_text_encoder",
    "single_token_words",
]


TEXT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def single_token_words(tokenizer: Any, words: Sequence[str]) -> list[str]:
    """The words that are one token of the encoder's vocabulary (only those can be masked as a
    whole and predicted as one concept; our reading of "concept token")."""
    vocab = tokenizer.get_vocab()
    return [w for w in words if w in vocab]


def concept_positions(tokens: Sequence[str], concept_index: dict[str, int]) -> list[int]:
    """Positions of whole-word concept tokens in a WordPiece sequence (a token followed by a
    ``##`` continuation is part of a longer word and does not count)."""
    out = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in concept_index and not nxt.startswith("##"):
            out.append(i)
    return out


class FrozenTextEncoder:
    """Token states of masked captions from a frozen pretrained encoder (no gradients)."""

    def __init__(self, name: str, max_len: int, cache: bool = True, dtype: str = "float32") -> None:
        if dtype not in TEXT_DTYPES:
            raise ValueError(
                f"model.text_dtype must be one of {sorted(TEXT_DTYPES)}, got {dtype!r}"
            )
        self.name = name
        self.max_len = max_len
        self.tokenizer = load_tokenizer(name)
        self.model = load_frozen_model(name).to(TEXT_DTYPES[dtype])
        self.dim = int(self.model.config.hidden_size)
        self.cache: dict[tuple[tuple[int, ...], int], Tensor] | None = {} if cache else None

    def to(self, device: torch.device | str) -> FrozenTextEncoder:
        self.model.to(device)
        return self

    @torch.no_grad()
    def encode(self, input_ids: Tensor, attention: Tensor) -> Tensor:
        """``(B, L, D)`` last hidden states of already masked ids."""
        device = next(self.model.parameters()).device
        if self.cache is None:
            return self.model(
                input_ids=input_ids.to(device), attention_mask=attention.to(device)
            ).last_hidden_state.float()
        keys = [(tuple(ids[: int(a.sum())].tolist()), 0) for ids, a in zip(input_ids, attention)]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            states = self.model(
                input_ids=input_ids[missing].to(device),
                attention_mask=attention[missing].to(device),
            ).last_hidden_state.float()
            for j, i in enumerate(missing):
                n = len(keys[i][0])
                self.cache[keys[i]] = states[j, :n].to(torch.float16).cpu()
        out = torch.zeros(len(keys), input_ids.shape[1], self.dim, device=device)
        for i, k in enumerate(keys):
            s = self.cache[k]
            out[i, : len(s)] = s.to(device, torch.float32)
        return out
