"""ICMLM's learned image encoder for the cross-method suite: the trained trunk, its last map
average-pooled. ICMLM has no text tower in the image's space (its text encoder is a frozen
language model read through the fusion head), so text columns do not apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capbench.suite.encoder import Encoder, from_image_module


def suite_encoder(config: dict[str, Any], checkpoint: str, data_root: Path, seed: int) -> Encoder:
    """The trunk of the row's checkpoint at the row's image size."""
    from capbench.methods.icmlm.config import row_config
    from capbench.methods.icmlm.train import load_icmlm

    cfg = row_config(config)
    model = load_icmlm(checkpoint).eval()
    enc = from_image_module(
        f"icmlm:{cfg.row.name or cfg.train.mode}",
        model.trunk,
        image_size=cfg.model.image_size,
        info={"checkpoint": checkpoint, **model.provenance},
    )
    enc.no_text_reason = "ICMLM's text encoder is a frozen language model, not a joint space"
    return enc
