"""What the SJE model trains on: fixed image features with their class and captions, served in
Reed et al.'s mini-batches (one image per class, then one of its captions, then one of its
image views), and the tokenizer each text encoder reads.

Features and token ids live in memory (a feature is 1024 floats), so a batch is a gather, not
an image decode. The batch order comes from ``ClassBalancedBatchSampler`` (seeded by the seed
and the epoch; DDP-aware); the view and caption of each item are drawn from torch's generator,
which ``capbench.methods.training.RngState`` checkpoints, so an interrupted run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from capbench.data.records import CaptionedImage
from capbench.data.text import CharAlphabet, Tokenizer, WordVocab
from capbench.data.views import ClassBalancedBatchSampler
from capbench.models.text_encoders.base import CHAR_SEQ_LEN, TEXT_ENCODERS, WORD_SEQ_LEN


def encoder_level(name: str) -> str:
    """``"char"``, ``"word"`` or ``"class"``: which input the registered encoder reads."""
    TEXT_ENCODERS.get(name)  # an unknown name fails here, listing the known ones
    if name == "attributes":
        return "class"
    return "char" if name.startswith("char_") else "word"


def build_tokenizer(encoder: str, train_captions: Sequence[str], min_count: int) -> Tokenizer:
    """Reed's 70-character alphabet for the character models; the training captions' full
    vocabulary for the word models (section 4); unused by the attribute encoder."""
    if encoder_level(encoder) == "char":
        return CharAlphabet()
    return WordVocab.build(train_captions, min_count=min_count)


def encode_captions(
    tokenizer: Tokenizer, level: str, captions: Sequence[str]
) -> Tensor:  # (M, L) token ids
    """Token ids of ``captions``, cut or padded to 201 characters / 30 words."""
    max_len = CHAR_SEQ_LEN if level == "char" else WORD_SEQ_LEN
    return torch.tensor([tokenizer.encode(c, max_len=max_len) for c in captions], dtype=torch.long)


def caption_tokens(
    records: Sequence[CaptionedImage], tokenizer: Tokenizer | None, level: str, per_image: int
) -> Tensor:
    """``(N, per_image, L)`` ids of each record's first ``per_image`` captions (the attribute
    encoder's "text" is the class id, ``L = 1``). A record with fewer captions fails, named."""
    if level == "class":
        labels = torch.tensor([int(r.label) for r in records], dtype=torch.long)  # type: ignore[arg-type]
        return labels.view(-1, 1, 1).expand(-1, per_image, 1).contiguous()
    rows = []
    for r in records:
        if len(r.captions) < per_image:
            raise ValueError(
                f"record {r.image_id} ({r.image_path}): {len(r.captions)} captions, expected at "
                f"least {per_image} (train.captions_per_image)"
            )
        rows.append(encode_captions(tokenizer, level, r.captions[:per_image]))  # type: ignore[arg-type]
    return torch.stack(rows)


class SJEItems(Dataset):
    """Item ``i``: a random view of image i's features, a random caption of it, its class."""

    def __init__(self, features: Tensor, tokens: Tensor, labels: Tensor) -> None:
        if not features.shape[0] == tokens.shape[0] == labels.shape[0]:
            raise ValueError(
                f"SJEItems: {features.shape[0]} features, {tokens.shape[0]} caption sets, "
                f"{labels.shape[0]} labels"
            )
        self.features, self.tokens, self.labels = features, tokens, labels

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        view = int(torch.randint(self.features.shape[1], ()))
        caption = int(torch.randint(self.tokens.shape[1], ()))
        return {
            "features": self.features[i, view],
            "tokens": self.tokens[i, caption],
            "label": self.labels[i],
        }


class SJEFeatureData(L.LightningDataModule):
    """Training data of one SJE model: ``features (N, V, D)``, ``tokens (N, C, L)``, ``labels
    (N,)``, plus what the module needs to build its encoder (``vocab_size``, ``tokenizer``,
    ``class_attributes``, ``word_vectors``)."""

    def __init__(
        self,
        features: Tensor,
        tokens: Tensor,
        labels: Tensor,
        tokenizer: Tokenizer | None,
        level: str,
        batch_size: int,
        seed: int = 0,
        num_workers: int = 0,
        vocab_size: int | None = None,
        class_attributes: Tensor | None = None,
        word_vectors: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.items = SJEItems(features, tokens, labels)
        self.tokenizer = tokenizer
        self.level = level
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.class_attributes = class_attributes
        self.word_vectors = word_vectors
        if vocab_size is None:
            vocab_size = tokenizer.vocab_size if tokenizer is not None else 2
        self.vocab_size = int(vocab_size)

    @property
    def feature_dim(self) -> int:
        return int(self.items.features.shape[2])

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        sampler = ClassBalancedBatchSampler(
            self.items.labels.tolist(), self.batch_size, self.seed, replicas, rank
        )
        return DataLoader(self.items, batch_sampler=sampler, num_workers=self.num_workers)
