"""Char-CNN and Word-CNN: temporal convolutions over one-hot text, flattened, then linear.

The official code has several candidate modules and no script that says which one produced the
paper's CNN rows; these are the ones that read the paper's input lengths (unverified choice):

- **Char-CNN** = ``modules/DocumentCNNLarge.lua`` (lines 6-28): Conv(alphabet->384, k4)-ReLU-
  MaxPool(3,3), Conv(384->512, k4)-ReLU-MaxPool(3,3), Conv(512->512, k4)-ReLU-MaxPool(3,3):
  201 -> 6 steps x 512 = 3072 -> Linear(3072 -> 1024). Its first two blocks are those of the
  Char-CNN-RNN (``HybridCNN.lua``); ``DocumentCNNShort.lua`` (256 channels, an extra 1024-d
  hidden layer) is the version the commented-out lines of ``DocumentCNNLarge.lua`` replace.
- **Word-CNN** = ``modules/DocumentCNNWord.lua`` (lines 6-22), the only word-level CNN:
  Conv(vocab->256, k3)-ReLU-MaxPool(3,3), Conv(256->256, k3)-ReLU, Conv(256->256, k3)-ReLU:
  30 -> 5 steps x 256 = 1280 -> Linear(1280 -> 1024) -> Dropout -> Linear(1024 -> 1024). The
  Lua comments say "10 x", "8 x", "6 x" steps, but its ``Reshape(1280)`` is 5 x 256, which is
  what the layers give.

Padding is part of the fixed-length input, as in Reed's code: a text is always read as exactly
``seq_len`` ids, so extra padding never changes the output, but the zero columns of a short text
do reach the convolutions (there is no masking in a flattened CNN).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from capbench.models.text_encoders.base import (
    CHAR_SEQ_LEN,
    EMBED_DIM,
    REED_INIT_BOUND,
    TEXT_ENCODERS,
    WORD_SEQ_LEN,
    TextEncoder,
    reed_uniform_,
)
from capbench.models.text_encoders.convs import ConvSpec, OneHotConvs, with_channels

CHAR_CNN = (ConvSpec(384, 4, (3, 3)), ConvSpec(512, 4, (3, 3)), ConvSpec(512, 4, (3, 3)))
WORD_CNN = (ConvSpec(256, 3, (3, 3)), ConvSpec(256, 3), ConvSpec(256, 3))


class ConvEncoder(TextEncoder):
    """One-hot ids -> conv stack -> flatten (time-major) -> [Linear(hidden) -> Dropout] -> Linear."""

    def __init__(
        self,
        level: str,
        vocab_size: int,
        out_dim: int,
        seq_len: int,
        specs: Sequence[ConvSpec],
        hidden: int | None = None,
        dropout: float = 0.0,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        super().__init__(level, vocab_size, out_dim, seq_len)
        self.features = OneHotConvs(vocab_size, seq_len, specs)
        width = self.features.steps * self.features.channels
        head: list[nn.Module] = []
        if hidden is not None:
            head += [nn.Linear(width, hidden), nn.Dropout(dropout)]
            width = hidden
        head.append(nn.Linear(width, out_dim))
        self.head = nn.Sequential(*head)
        reed_uniform_(self, init_bound)

    def forward(self, ids: Tensor) -> Tensor:
        features = self.features(self.prepare(ids))  # (B, T, C)
        return self.head(features.flatten(1))


@TEXT_ENCODERS.register("char_cnn")
def char_cnn(
    vocab_size: int,
    out_dim: int = EMBED_DIM,
    channels: Sequence[int] | None = None,
    **kwargs,
) -> ConvEncoder:
    """Char-CNN (``DocumentCNNLarge.lua``): 201 characters -> 6 x 512 -> Linear -> 1024.
    ``channels`` narrows the three conv layers (a CPU stand-in; None: the paper's)."""
    kwargs.setdefault("seq_len", CHAR_SEQ_LEN)
    specs = with_channels(CHAR_CNN, channels)
    return ConvEncoder("char", vocab_size, out_dim, specs=specs, **kwargs)


@TEXT_ENCODERS.register("word_cnn")
def word_cnn(
    vocab_size: int,
    out_dim: int = EMBED_DIM,
    channels: Sequence[int] | None = None,
    **kwargs,
) -> ConvEncoder:
    """Word-CNN (``DocumentCNNWord.lua``): 30 words -> 5 x 256 -> 1024 -> 1024.
    ``channels`` narrows the three conv layers (a CPU stand-in; None: the paper's)."""
    kwargs.setdefault("seq_len", WORD_SEQ_LEN)
    kwargs.setdefault("hidden", 1024)
    specs = with_channels(WORD_CNN, channels)
    return ConvEncoder("word", vocab_size, out_dim, specs=specs, **kwargs)
