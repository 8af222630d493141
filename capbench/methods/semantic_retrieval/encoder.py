"""Gordo & Larlus's learned encoder for the cross-method suite: phi (R-MAC) from a row's
checkpoint, images embedded exactly as the paper's evaluation does (fp32, the model's size)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from capbench.data.records import CaptionedImage
from capbench.suite.encoder import Encoder

NO_TEXT = "no caption tower (the V+T text branch embeds tf-idf bags)"


def suite_encoder(config: dict[str, Any], checkpoint: str, data_root: Path, seed: int) -> Encoder:
    """phi of the row's checkpoint; no text tower (see ``NO_TEXT``)."""
    from capbench.methods.semantic_retrieval.train import embed_records, load_semantic_retrieval

    model = load_semantic_retrieval(checkpoint).eval()

    def images(records: Sequence[CaptionedImage]) -> Tensor:
        return embed_records(model, records)

    m = model.cfg.model
    info = {"backbone": m.backbone, "longest_side": m.longest_side, "dim": model.out_dim}
    return Encoder("semantic_retrieval", images, None, info, no_text_reason=NO_TEXT)
