"""Show-and-Tell (Vinyals et al., TPAMI 2016): a CNN, a linear map of its pooled feature to the
LSTM's 512-d input, and the LSTM decoder. Mopuri et al. take that 512-d image embedding, the
input of the language model, as the image's "FIC" feature (L2-normalised).

Two options the paper does not have, for trunks that are not ImageNet's (the scenes stand-in):
``stride=16`` pools the trunk before its last stage (as the region captioner's trunk does), and
``feature_norm="batchnorm"`` standardises the pooled feature (a BatchNorm without affine
parameters) before the image map. Both default off: the paper's model."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from capbench.models.captioners.decoder import CaptionDecoder, SpecialIds
from capbench.models.captioners.trunk import dense_trunk
from capbench.models.feature_norm import norm_layer


class ShowAndTell(nn.Module):
    """Trunk -> global average pooling -> (standardise) -> linear 512 (the image embedding) ->
    LSTM decoder."""

    def __init__(
        self,
        backbone: str,
        vocab_size: int,
        specials: SpecialIds,
        dim: int = 512,
        dropout: float = 0.5,
        weights: str | Path | None = None,
        stride: int = 32,
        feature_norm: str = "none",
    ) -> None:
        super().__init__()
        self.trunk, channels = dense_trunk(backbone, stride, weights)
        self.feature_norm = norm_layer(feature_norm, channels)
        self.embed_image = nn.Linear(channels, dim)
        self.decoder = CaptionDecoder(vocab_size, specials, dim, dropout)

    def pooled(self, images: Tensor) -> Tensor:
        """The trunk's globally average-pooled feature, ``(B, C)``."""
        return self.trunk(images).mean(dim=(2, 3))

    def image_embedding(self, images: Tensor) -> Tensor:
        """The 512-d input of the LSTM, ``(B, dim)`` (not normalised)."""
        return self.embed_image(self.feature_norm(self.pooled(images)))

    def fic(self, images: Tensor) -> Tensor:
        """Mopuri et al.'s FIC feature: the image embedding, L2-normalised."""
        return F.normalize(self.image_embedding(images), dim=1)

    def loss(self, images: Tensor, tokens: Tensor) -> Tensor:
        """Teacher-forced cross-entropy of the caption ``tokens`` given the images."""
        return self.decoder.loss(self.image_embedding(images), tokens)

    def loss_from_pooled(self, pooled: Tensor, tokens: Tensor) -> Tensor:
        """The same loss from the trunk's pooled features (computed once when it is frozen)."""
        return self.decoder.loss(self.embed_image(self.feature_norm(pooled)), tokens)

    def caption(self, images: Tensor, beam_size: int = 3, max_len: int = 20) -> list[list[int]]:
        """Beam-search word ids, one list per image."""
        return self.decoder.beam_search(self.image_embedding(images), beam_size, max_len)
