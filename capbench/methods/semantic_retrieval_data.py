"""Data wiring of the semantic-retrieval method: image datasets over records, the tf-idf
surrogate of the training split with its k-NN relevant sets, and the triplet datasets of one
mining round. Kept apart from the LightningModule so the data layer can change under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from capbench.data.records import CaptionedImage


def image_config(config: dict[str, Any]) -> dict[str, Any]:
    """The image preprocessing values of a row config (``model`` section)."""
    model = dict(config.get("model") or {})
    return {
        "longest_side": int(model.get("longest_side", 576)),
        "pad_to_square": bool(model.get("pad_to_square", True)),
    }


def image_transform(config: dict[str, Any]) -> Any:
    """Resize so the longest side is ``longest_side`` (576 in the paper), keeping the aspect
    ratio; padded to a square with the mean colour (zero after normalisation) when
    ``pad_to_square`` so images batch; no augmentation (the paper mentions none)."""
    from capbench.data.images import build_transform

    cfg = image_config(config)
    return build_transform(longest_side=cfg["longest_side"], pad_to_square=cfg["pad_to_square"])


def load_image_tensor(path: str, config: dict[str, Any]) -> Tensor:
    """One image file as the model sees it, ``(3, H, W)``."""
    from capbench.data.images import load_rgb

    return image_transform(config)(load_rgb(path))


class RecordImages(Dataset):
    """Images of records in order: ``{"image": (3, H, W), "index": i, "image_id": id}``."""

    def __init__(self, records: Sequence[CaptionedImage], transform: Any) -> None:
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from capbench.data.images import load_rgb

        rec = self.records[i]
        return {
            "image": self.transform(load_rgb(rec.image_path)),
            "index": i,
            "image_id": rec.image_id,
        }


@dataclass
class TrainingData:
    """Everything a training run needs besides the model.

    ``images[i]`` is a dict with an ``"image"`` tensor; ``tfidf`` the ``(n, V)`` L2-normalised
    tf-idf rows of the same images; ``relevant`` ``(n, k)`` their k nearest neighbours under the
    tf-idf dot product (self excluded).
    """

    images: Dataset
    tfidf: sp.csr_matrix
    relevant: Tensor

    def __post_init__(self) -> None:
        n = len(self.images)  # type: ignore[arg-type]
        if self.tfidf.shape[0] != n or self.relevant.shape[0] != n:
            raise ValueError(
                f"training data disagree: {n} images, {self.tfidf.shape[0]} tf-idf rows, "
                f"{self.relevant.shape[0]} relevance rows"
            )


def relevant_sets(tfidf: sp.csr_matrix, k: int, progress: bool = False) -> Tensor:
    """``(n, k)`` k-NN under the tf-idf dot product (training-time relevance, section 5.1)."""
    from capbench.data.tfidf import topk_neighbours

    k = min(k, tfidf.shape[0] - 1)
    if k < 1:
        raise ValueError(
            f"need at least 2 training images to define relevant sets, got {tfidf.shape[0]}"
        )
    idx, _ = topk_neighbours(tfidf, k, exclude_self=True, progress=progress)
    return torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64))


def training_tfidf(records: Sequence[CaptionedImage], tfidf: Any) -> sp.csr_matrix:
    """tf-idf rows of the training records: ``tfidf`` is a fitted ``StemmedTfidf`` or already the
    ``(n, V)`` matrix of those records."""
    if sp.issparse(tfidf):
        X = sp.csr_matrix(tfidf, dtype=np.float32)
        if X.shape[0] != len(records):
            raise ValueError(
                f"tf-idf matrix has {X.shape[0]} rows for {len(records)} training records"
            )
        return X
    from capbench.data.tfidf import record_document

    return sp.csr_matrix(
        tfidf.transform([record_document(r, "regions") for r in records]), dtype=np.float32
    )


def build_training_data(
    records: Sequence[CaptionedImage], tfidf: Any, config: dict[str, Any], progress: bool = False
) -> TrainingData:
    """Images, tf-idf rows and k-NN relevant sets (``train.k_relevant``, 32) of the training split."""
    k = int((config.get("train") or {}).get("k_relevant", 32))
    X = training_tfidf(records, tfidf)
    return TrainingData(
        RecordImages(records, image_transform(config)), X, relevant_sets(X, k, progress)
    )


class TripletImages(Dataset):
    """One mining round's triplets ``(T, 3)`` of global indices, as image triples."""

    def __init__(self, images: Dataset, triplets: Tensor) -> None:
        self.images = images
        self.triplets = triplets

    def __len__(self) -> int:
        return int(self.triplets.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        q, p, n = (int(v) for v in self.triplets[i])
        return {
            "q_image": self.images[q]["image"],
            "p_image": self.images[p]["image"],
            "n_image": self.images[n]["image"],
            "triplet": self.triplets[i],
        }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Default collation, except image fields of different sizes stay lists of tensors."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if isinstance(values[0], Tensor) and len({tuple(v.shape) for v in values}) > 1:
            out[key] = values
        else:
            out[key] = default_collate(values)
    return out
