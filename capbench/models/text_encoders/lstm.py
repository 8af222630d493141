"""Char-LSTM and Word-LSTM: an LSTM over one-hot text, its hidden states averaged over the
text's own steps, then a linear layer to 1024-d.

``modules/LSTM.lua`` (lines 21-48) is a standard LSTM cell on one-hot input (``OneHot``, then
``Linear(input, 4 * rnn_size)`` + ``Linear(rnn_size, 4 * rnn_size)``, gates i, f, o and a tanh
write), which is ``torch.nn.LSTM`` on one-hot vectors. The paper embeds with the time-average of
the hidden units. The released code has no training script for the LSTM rows, so the hidden
size is not known: 512 here (unverified; a constructor argument), followed by Linear(512 ->
1024) like the CNN-RNN's final layer.

The average is masked: only steps that read a token count, and since padding is trailing and the
LSTM runs forwards, a text gives the same embedding however much padding follows it.
"""

from __future__ import annotations

from torch import Tensor, nn

from capbench.models.text_encoders.base import (
    CHAR_SEQ_LEN,
    EMBED_DIM,
    PAD_ID,
    REED_INIT_BOUND,
    TEXT_ENCODERS,
    WORD_SEQ_LEN,
    TextEncoder,
    masked_mean,
    one_hot,
    reed_uniform_,
)

LSTM_HIDDEN = 512


class LSTMEncoder(TextEncoder):
    """One-hot ids -> ``nn.LSTM`` -> masked time-average -> Dropout -> Linear."""

    def __init__(
        self,
        level: str,
        vocab_size: int,
        out_dim: int,
        seq_len: int,
        hidden: int = LSTM_HIDDEN,
        dropout: float = 0.0,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        super().__init__(level, vocab_size, out_dim, seq_len)
        self.lstm = nn.LSTM(vocab_size - 1, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, out_dim)
        reed_uniform_(self, init_bound)

    def forward(self, ids: Tensor) -> Tensor:
        ids = self.prepare(ids)
        states, _ = self.lstm(one_hot(ids, self.vocab_size))  # (B, L, H)
        return self.proj(self.dropout(masked_mean(states, ids != PAD_ID)))


@TEXT_ENCODERS.register("char_lstm")
def char_lstm(vocab_size: int, out_dim: int = EMBED_DIM, **kwargs) -> LSTMEncoder:
    """Char-LSTM: 201 characters -> LSTM(512), averaged -> 1024."""
    kwargs.setdefault("seq_len", CHAR_SEQ_LEN)
    return LSTMEncoder("char", vocab_size, out_dim, **kwargs)


@TEXT_ENCODERS.register("word_lstm")
def word_lstm(vocab_size: int, out_dim: int = EMBED_DIM, **kwargs) -> LSTMEncoder:
    """Word-LSTM: 30 words -> LSTM(512), averaged -> 1024."""
    kwargs.setdefault("seq_len", WORD_SEQ_LEN)
    return LSTMEncoder("word", vocab_size, out_dim, **kwargs)
