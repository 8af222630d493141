"""Char-CNN-RNN and Word-CNN-RNN, Reed et al.'s best encoders: convolutions shorten the text to
8 steps, a plain ReLU RNN reads them, and the time-average of its hidden states goes through a
linear layer to 1024-d.

- **Char-CNN-RNN** = ``modules/HybridCNN.lua`` (lines 12-27) with ``cnn_dim 256``
  (``train_sje_hybrid.lua`` line 41, the CUB/Flowers scripts keep it): Conv(alphabet->384, k4)-
  ReLU-MaxPool(3,3), Conv(384->512, k4)-ReLU-MaxPool(3,3), Conv(512->256, k4)-ReLU-MaxPool(3,2):
  201 -> 198 -> 66 -> 63 -> 21 -> 18 -> 8 steps; RNN(256) over the 8 steps, averaged; Dropout
  (0 in the scripts); Linear(256 -> 1024).
- **Word-CNN-RNN** = ``modules/HybridCNNWord.lua`` (lines 12-25): Conv(vocab->512, k3)-ReLU,
  Conv(512->512, k2)-ReLU-MaxPool(3,3), Conv(512->512, k2)-ReLU: 30 -> 28 -> 27 -> 9 -> 8 steps;
  RNN(512) averaged (it passes ``avg = 1``); Linear(512 -> 1024).

The RNN is ``modules/FixedRNN.lua``: h_1 = ReLU(W_i x_1 + b_i), h_t = ReLU(W_i x_t + b_i +
W_h h_{t-1} + b_h), output (1/8) sum_t h_t. It is not ``torch.nn.RNN``: the first step has no
hidden-to-hidden term, so no ``b_h`` either (PyTorch adds b_hh at every step).

The average runs over all 8 steps, including steps computed from padding: ``FixedRNN`` sums
every step whatever the text length (lines 31-37), so masking them would be another model. What
holds instead is that the input is always exactly ``seq_len`` ids, so extra padding never
changes the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
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

CNN_DIM = 256  # train_sje_hybrid.lua -cnn_dim
CHAR_CNN_RNN = (ConvSpec(384, 4, (3, 3)), ConvSpec(512, 4, (3, 3)), ConvSpec(CNN_DIM, 4, (3, 2)))
WORD_CNN_RNN = (ConvSpec(512, 3), ConvSpec(512, 2, (3, 3)), ConvSpec(512, 2))


class ReedRNN(nn.Module):
    """``FixedRNN.lua``: a ReLU RNN whose first step has no recurrent term. ``(B, T, D)`` ->
    hidden states ``(B, T, D)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.i2h = nn.Linear(dim, dim)
        self.h2h = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        inputs = self.i2h(x)  # every step's input term at once
        h = torch.relu(inputs[:, 0])
        states = [h]
        for t in range(1, x.shape[1]):
            h = torch.relu(inputs[:, t] + self.h2h(h))
            states.append(h)
        return torch.stack(states, dim=1)


class CNNRNNEncoder(TextEncoder):
    """One-hot ids -> conv stack -> ``ReedRNN`` -> mean over steps -> Dropout -> Linear."""

    def __init__(
        self,
        level: str,
        vocab_size: int,
        out_dim: int,
        seq_len: int,
        specs: Sequence[ConvSpec],
        dropout: float = 0.0,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        super().__init__(level, vocab_size, out_dim, seq_len)
        self.features = OneHotConvs(vocab_size, seq_len, specs)
        self.rnn = ReedRNN(self.features.channels)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(self.features.channels, out_dim)
        reed_uniform_(self, init_bound)

    def forward(self, ids: Tensor) -> Tensor:
        states = self.rnn(self.features(self.prepare(ids)))  # (B, 8, C)
        return self.proj(self.dropout(states.mean(dim=1)))


@TEXT_ENCODERS.register("char_cnn_rnn")
def char_cnn_rnn(
    vocab_size: int,
    out_dim: int = EMBED_DIM,
    channels: Sequence[int] | None = None,
    **kwargs,
) -> CNNRNNEncoder:
    """Char-CNN-RNN (``HybridCNN.lua`` + ``FixedRNN.lua``): 201 characters -> 8 x 256 -> 1024.
    ``channels`` narrows the three conv layers (the last is the RNN's width; None: the paper's)."""
    kwargs.setdefault("seq_len", CHAR_SEQ_LEN)
    specs = with_channels(CHAR_CNN_RNN, channels)
    return CNNRNNEncoder("char", vocab_size, out_dim, specs=specs, **kwargs)


@TEXT_ENCODERS.register("word_cnn_rnn")
def word_cnn_rnn(
    vocab_size: int,
    out_dim: int = EMBED_DIM,
    channels: Sequence[int] | None = None,
    **kwargs,
) -> CNNRNNEncoder:
    """Word-CNN-RNN (``HybridCNNWord.lua`` + ``FixedRNN.lua``): 30 words -> 8 x 512 -> 1024.
    ``channels`` narrows the three conv layers (the last is the RNN's width; None: the paper's)."""
    kwargs.setdefault("seq_len", WORD_SEQ_LEN)
    specs = with_channels(WORD_CNN_RNN, channels)
    return CNNRNNEncoder("word", vocab_size, out_dim, specs=specs, **kwargs)
