"""Text relevance of a training split: tf-idf rows of one text field and each image's k most
relevant images under their dot product (Gordo & Larlus 2017, section 5.1: the training-time
surrogate of semantic similarity). Built once per split and shared by every loader that needs
it (the ``triplets`` view of ``CaptionDataModule`` and the methods that read text rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from capbench.data.records import CaptionedImage


@dataclass
class TextRelevance:
    """``tfidf``: ``(n, V)`` float32 L2-normalised rows of the split's images, in record order;
    ``relevant``: ``(n, k)`` their k nearest neighbours under the dot product (self excluded);
    ``model``: the fitted tf-idf (a ``StemmedTfidf``), or None when the rows were given."""

    tfidf: sp.csr_matrix
    relevant: Tensor
    model: Any = None

    def __post_init__(self) -> None:
        if self.tfidf.shape[0] != self.relevant.shape[0]:
            raise ValueError(
                f"text relevance disagrees: {self.tfidf.shape[0]} tf-idf rows, "
                f"{self.relevant.shape[0]} relevance rows"
            )

    @property
    def vocab_size(self) -> int:
        return int(self.tfidf.shape[1])

    def __len__(self) -> int:
        return int(self.tfidf.shape[0])


def relevant_sets(tfidf: sp.csr_matrix, k: int, progress: bool = False) -> Tensor:
    """``(n, k)`` k-NN under the tf-idf dot product, self excluded (k capped at n - 1)."""
    from capbench.data.tfidf import topk_neighbours

    k = min(k, tfidf.shape[0] - 1)
    if k < 1:
        raise ValueError(
            f"need at least 2 training images to define relevant sets, got {tfidf.shape[0]}"
        )
    idx, _ = topk_neighbours(tfidf, k, exclude_self=True, progress=progress)
    return torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64))


def build_text_relevance(
    records: Sequence[CaptionedImage],
    k: int,
    field: str = "regions",
    tfidf_options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> TextRelevance:
    """tf-idf fitted on ``records`` (vocabulary and idf from this split only, cached by content)
    and their k-NN relevant sets."""
    from capbench.data.tfidf import cached_tfidf

    model, x = cached_tfidf(records, records, field=field, **dict(tfidf_options or {}))
    x = sp.csr_matrix(x, dtype=np.float32)
    return TextRelevance(x, relevant_sets(x, k, progress), model)
