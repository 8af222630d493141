"""The two towers of the joint image-caption space (VSE++'s, which Malali & Keller compare to):
a ResNet trunk, average-pooled and mapped linearly to D; a GRU over word embeddings whose last
hidden state is the caption embedding (fartashf/vsepp ``EncoderImageFull`` / ``EncoderText``, as
facts: pooled trunk + linear map; 1-layer GRU over learned word vectors, hidden size D); or, as
the option the issue names, a frozen pretrained transformer's sentence vector mapped linearly to
D (only the map learns)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from capbench.models.backbones import create_backbone
from capbench.models.pretrained_text import SentenceEncoder


class ImageTower(nn.Module):
    """trunk -> global average pool -> Linear(C, D)."""

    def __init__(
        self, backbone: str, weights: str | None, embed_dim: int, finetune_trunk: bool
    ) -> None:
        super().__init__()
        self.trunk, channels = create_backbone(backbone, weights)
        self.finetune_trunk = finetune_trunk
        if not finetune_trunk:
            self.trunk.requires_grad_(False)
        self.fc = nn.Linear(channels, embed_dim)

    def pooled(self, images: Tensor) -> Tensor:
        """The trunk's average-pooled features ``(B, C)`` (no gradient when it is frozen)."""
        if self.finetune_trunk:
            return self.trunk(images).mean(dim=(2, 3))
        with torch.no_grad():
            return self.trunk(images).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.pooled(images))

    def train(self, mode: bool = True) -> ImageTower:
        """A frozen trunk stays in eval mode: its BatchNorm uses its stored statistics, so its
        features do not depend on the batch (and can be computed once)."""
        super().train(mode)
        if not self.finetune_trunk:
            self.trunk.eval()
        return self


class GRUTextTower(nn.Module):
    """Word embeddings -> 1-layer GRU; the hidden state after each caption's last real token."""

    def __init__(self, vocab_size: int, word_dim: int, embed_dim: int, pad_id: int = 0) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.embed = nn.Embedding(self.vocab_size, word_dim, padding_idx=pad_id)
        self.gru = nn.GRU(word_dim, embed_dim, num_layers=1, batch_first=True)
        self.pad_id = pad_id

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            lengths = (tokens != self.pad_id).sum(1)
        # an empty caption (every word out of vocabulary and dropped) reads its first pad token
        lengths = lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(
            self.embed(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.gru(packed)
        return hidden[-1]


class TransformerTextTower(nn.Module):
    """A frozen pretrained encoder's mean-pooled sentence vector -> Linear(H, D).

    The encoder (``capbench.models.pretrained_text.SentenceEncoder``) is not a submodule: its
    weights stay out of the checkpoint (reloaded from ``name``) and it gets no gradient; each
    caption is encoded once and memoised, so training costs the linear map only.
    """

    def __init__(self, name: str, embed_dim: int, max_len: int = 128) -> None:
        super().__init__()
        self.encoder = SentenceEncoder(name, max_len)
        self.proj = nn.Linear(self.encoder.dim, embed_dim)

    def embed_texts(self, texts: list[str]) -> Tensor:
        """``(B, D)`` (not normalised) for raw caption strings."""
        return self.proj(self.encoder.encode(texts, self.proj.weight.device))
