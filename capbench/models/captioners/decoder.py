"""The LSTM language model both captioners share (Vinyals et al.'s Show-and-Tell decoder, which
DenseCap reuses per region): a 512-d visual code is the LSTM's first input, then the words.

Why one file for both: the Show-and-Tell image embedding (the FIC feature) and DenseCap's
region code (whose LSTM encoding is the BoRD feature) enter the same kind of decoder, and the
beam search, the teacher-forced loss and the "LSTM-encoded" feature are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class SpecialIds:
    """The token ids the decoder needs from the vocabulary."""

    pad: int
    bos: int
    eos: int


class CaptionDecoder(nn.Module):
    """Word embedding + one-layer LSTM + linear word classifier.

    Step -1 reads the visual code, step 0 the ``<bos>`` token, then each word; the output of
    step t predicts word t+1 (``<eos>`` last), as in Show-and-Tell (Vinyals et al. 2015, Eq. 10-12).
    """

    def __init__(
        self, vocab_size: int, specials: SpecialIds, dim: int = 512, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.specials = specials
        self.dim = dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=specials.pad)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, code: Tensor, tokens: Tensor) -> Tensor:
        """Teacher-forced word logits ``(B, T+1, V)`` for the targets ``tokens`` ``(B, T)``
        (word ids, padded with ``pad``): position t predicts ``tokens[:, t]`` and the last
        position after the final word predicts ``<eos>``."""
        bos = tokens.new_full((len(tokens), 1), self.specials.bos)
        words = self.embed(torch.cat([bos, tokens], dim=1))
        seq = torch.cat([code.unsqueeze(1), words], dim=1)
        hidden, _ = self.lstm(self.drop(seq))
        return self.out(self.drop(hidden[:, 1:]))

    def loss(self, code: Tensor, tokens: Tensor) -> Tensor:
        """Mean cross-entropy of every word and the closing ``<eos>`` (padding ignored)."""
        targets = append_eos(tokens, self.specials)
        logits = self.forward(code, targets[:, :-1])
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            ignore_index=self.specials.pad,
        )

    def nll(self, code: Tensor, tokens: Tensor) -> Tensor:
        """Per sequence ``(B,)``: the mean teacher-forced cross-entropy of its words and
        ``<eos>`` given its ``code`` (how well a code explains a text; padding ignored)."""
        targets = append_eos(tokens, self.specials)
        logits = self.forward(code, targets[:, :-1])
        per_word = F.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=self.specials.pad, reduction="none"
        )
        return per_word.sum(dim=1) / (targets != self.specials.pad).sum(dim=1).clamp(min=1)

    def encode(self, code: Tensor) -> Tensor:
        """The LSTM's hidden state after reading ``code`` alone, ``(B, dim)``: the
        "LSTM-encoded" visual feature (DenseCap region codes -> BoRD)."""
        _, (h, _) = self.lstm(code.unsqueeze(1))
        return h[-1]

    @torch.no_grad()
    def beam_search(self, code: Tensor, beam_size: int = 3, max_len: int = 20) -> list[list[int]]:
        """The most probable word sequence (sum of log-probabilities, ``<eos>`` excluded from
        the output) for each code of ``(B, dim)``; ``beam_size=1`` is greedy decoding."""
        return [self._beam_one(c, beam_size, max_len) for c in code]

    def _beam_one(self, code: Tensor, beam_size: int, max_len: int) -> list[int]:
        sp = self.specials
        _, state = self.lstm(code.view(1, 1, -1))
        beams: list[tuple[float, list[int], tuple[Tensor, Tensor]]] = [(0.0, [sp.bos], state)]
        done: list[tuple[float, list[int]]] = []
        for _ in range(max_len + 1):
            last = torch.tensor([[b[1][-1]] for b in beams], device=code.device)
            h = torch.cat([b[2][0] for b in beams], dim=1)
            c = torch.cat([b[2][1] for b in beams], dim=1)
            out, (h, c) = self.lstm(self.embed(last), (h, c))
            logp = F.log_softmax(self.out(out[:, -1]), dim=-1)
            logp[:, sp.pad] = -float("inf")
            logp[:, sp.bos] = -float("inf")
            total = logp + torch.tensor([b[0] for b in beams], device=code.device)[:, None]
            top, flat = total.view(-1).topk(min(beam_size, total.numel()))
            nxt = []
            for score, idx in zip(top.tolist(), flat.tolist()):
                src, word = divmod(idx, logp.shape[1])
                seq = beams[src][1] + [word]
                if word == sp.eos:
                    done.append((score, seq[1:-1]))
                else:
                    nxt.append((score, seq, (h[:, src : src + 1], c[:, src : src + 1])))
            beams = nxt
            if not beams or (len(done) >= beam_size and max(d[0] for d in done) > beams[0][0]):
                break
        done.extend((b[0], b[1][1:]) for b in beams)  # unfinished at max_len
        return max(done, key=lambda d: d[0])[1]


def append_eos(tokens: Tensor, specials: SpecialIds) -> Tensor:
    """``tokens`` ``(B, T)`` with ``<eos>`` written after each sequence's last word (one more
    column; padding stays ``pad``)."""
    padded = F.pad(tokens, (0, 1), value=specials.pad)
    length = (tokens != specials.pad).sum(dim=1)
    padded[torch.arange(len(tokens), device=tokens.device), length] = specials.eos
    return padded
