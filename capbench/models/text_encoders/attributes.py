"""The attributes baseline: a fixed per-class attribute vector, mapped linearly to 1024-d.

``modules/AttributeEncoder.lua`` (lines 3-11) is one ``Linear(input_size, hid_size)``; the paper
uses one attribute vector per class (CUB's 312 continuous values,
``CUB_200_2011/attributes/class_attribute_labels_continuous.txt``, read by
``capbench.data.sources.cub.read_class_attributes``), having found per-image attributes no
better. The "text" of a class is its index, so this encoder's token is the class id
(``level == "class"``, ``vocab_size`` = number of classes).

CUB's values are percentages (0-100). They are L2-normalised per class by default, as in the
SJE/ALE work whose attribute baseline this is; whether Reed rescaled them is unverified.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from capbench.models.text_encoders.base import (
    EMBED_DIM,
    REED_INIT_BOUND,
    TEXT_ENCODERS,
    TextEncoder,
    reed_uniform_,
)


class AttributeEncoder(TextEncoder):
    """Class ids ``(B,)`` or ``(B, 1)`` -> their attribute vectors -> Linear."""

    def __init__(
        self,
        class_attributes: Tensor,
        out_dim: int = EMBED_DIM,
        normalize: bool = True,
        init_bound: float | None = REED_INIT_BOUND,
    ) -> None:
        table = torch.as_tensor(class_attributes, dtype=torch.float32)
        if table.dim() != 2:
            raise ValueError(f"AttributeEncoder: expected (classes, attributes), got {table.shape}")
        super().__init__("class", table.shape[0], out_dim, None)
        if normalize:
            table = nn.functional.normalize(table, dim=1)
        self.register_buffer("table", table.clone())
        self.proj = nn.Linear(table.shape[1], out_dim)
        reed_uniform_(self, init_bound)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.dim() == 1:
            ids = ids.unsqueeze(1)
        if ids.dim() != 2 or ids.shape[1] != 1:
            raise ValueError(
                f"AttributeEncoder: expected class ids (B,) or (B, 1), got {ids.shape}"
            )
        return self.proj(self.table[self.prepare(ids)[:, 0]])


@TEXT_ENCODERS.register("attributes")
def attributes(
    vocab_size: int, out_dim: int = EMBED_DIM, *, class_attributes: Tensor, **kwargs
) -> AttributeEncoder:
    """Per-class attribute vector -> Linear -> 1024; ``vocab_size`` is the number of classes."""
    if len(class_attributes) != vocab_size:
        raise ValueError(
            f"attributes: {len(class_attributes)} attribute vectors for {vocab_size} classes"
        )
    return AttributeEncoder(class_attributes, out_dim=out_dim, **kwargs)
