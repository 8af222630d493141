"""Reed et al. 2016's text encoders, registered by name (one module per family).

``build_text_encoder("char_cnn_rnn", vocab_size=CharAlphabet().vocab_size)`` returns a module
that maps token ids ``(B, L)`` to ``(B, 1024)``. Names: ``bow``, ``word2vec_avg``,
``attributes``, ``char_cnn``, ``char_lstm``, ``char_cnn_rnn``, ``word_cnn``, ``word_lstm``,
``word_cnn_rnn``. Each module's docstring gives its layers and the Lua file they follow.
"""

from __future__ import annotations

from capbench.models.text_encoders import attributes, bow, cnn, cnn_rnn, lstm, word2vec
from capbench.models.text_encoders.base import EMBED_DIM, TEXT_ENCODERS, TextEncoder

__all__ = [
    "TEXT_ENCODERS",
    "TextEncoder",
    "attributes",
    "bow",
    "build_text_encoder",
    "cnn",
    "cnn_rnn",
    "lstm",
    "names",
    "word2vec",
]


def build_text_encoder(
    name: str, vocab_size: int, out_dim: int = EMBED_DIM, **options
) -> TextEncoder:
    """The encoder registered as ``name`` (family options such as ``vectors`` or
    ``class_attributes`` pass through)."""
    return TEXT_ENCODERS.get(name)(vocab_size, out_dim, **options)


def names() -> list[str]:
    return TEXT_ENCODERS.names()
