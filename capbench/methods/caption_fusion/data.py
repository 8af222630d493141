"""The fusion's data: per-image feature vectors of a graded benchmark served as training pairs
(``a``, ``b``, ``grade``) for one cross-validation fold, with the held-out validation pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from capbench.data.records import CaptionedImage
from capbench.methods.caption_fusion.config import CaptionFusionConfig
from capbench.methods.caption_fusion.pairs import (
    Pair,
    build_pairs,
    shuffle_pairs,
    split_queries,
    split_validation,
)


class PairTensors(Dataset):
    """Pairs as rows of three tensors (features are small: all of them sit in memory)."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        self.tensors = dict(tensors)

    def __len__(self) -> int:
        return len(self.tensors["grade"])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def pair_tensors(pairs: Sequence[Pair], features: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """``{"a": (N, D), "b": (N, D), "grade": (N,)}`` of ``pairs``; a missing feature is an error
    naming the image."""
    dim = len(next(iter(features.values())))

    def rows(ids: list[str]) -> Tensor:
        for i in ids:
            if i not in features:
                raise KeyError(f"no feature vector for image {i!r} (feature file incomplete?)")
        out = np.stack([features[i] for i in ids]) if ids else np.zeros((0, dim))
        return torch.as_tensor(out, dtype=torch.float32)

    return {
        "a": rows([p.query for p in pairs]),
        "b": rows([p.other for p in pairs]),
        "grade": torch.tensor([p.grade for p in pairs], dtype=torch.float32),
    }


class FusionPairs(L.LightningDataModule):
    """Training pairs of ``train_queries`` (shuffled each epoch); ``val_fraction`` of them, a
    seeded random draw as in the code, held out as ``val_pairs`` (a dict of tensors the module
    scores at epoch ends)."""

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        features: Mapping[str, np.ndarray],
        train_queries: Sequence[str],
        cfg: CaptionFusionConfig,
        seed: int = 0,
    ) -> None:
        super().__init__()
        relevance = {r.image_id: r.meta["relevance"] for r in records if r.split == "query"}
        images = [r.image_id for r in records]
        if cfg.train.val_split == "queries":  # the config admits only "pairs" and "queries"
            fit_q, val_q = split_queries(train_queries, cfg.train.val_fraction, seed)
            train = shuffle_pairs(build_pairs(relevance, fit_q, images, cfg.pairs, seed), seed)
            val = build_pairs(relevance, val_q, images, cfg.pairs, seed)
        else:
            pairs = build_pairs(relevance, train_queries, images, cfg.pairs, seed)
            train, val = split_validation(shuffle_pairs(pairs, seed), cfg.train.val_fraction)
        if not train:
            raise ValueError(f"no training pairs for queries {list(train_queries)[:5]}...")
        self.train_pairs = pair_tensors(train, features)
        self.val_pairs = pair_tensors(val, features)
        self.batch_size = cfg.train.batch_size
        self.num_workers = cfg.train.num_workers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            PairTensors(self.train_pairs),
            batch_size=self.batch_size,
            shuffle=True,  # Keras fit(shuffle=True): the training pairs, every epoch
            num_workers=self.num_workers,
        )

    def info(self) -> dict[str, Any]:
        grades = self.train_pairs["grade"]
        return {
            "train_pairs": len(grades),
            "val_pairs": len(self.val_pairs["grade"]),
            "grade_counts": {int(g): int((grades == g).sum()) for g in grades.unique()},
        }
