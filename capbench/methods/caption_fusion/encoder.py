"""Mopuri et al.'s caption-generator features for the cross-method suite: FIC (Show-and-Tell's
image embedding) or BoRD (the region captioner's top-5 region encodings), from the captioner
checkpoint a ``fic`` / ``bord`` row used. Captioners generate text but embed none, so there is
no text tower in the images' space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from capbench.data.records import CaptionedImage
from capbench.suite.encoder import Encoder

NO_TEXT = "no text tower (a captioner generates captions, it embeds none)"
FEATURES = ("fic", "bord")


def suite_encoder(config: dict[str, Any], checkpoint: str, data_root: Path, seed: int) -> Encoder:
    from capbench.data.region_phrases import pad_images
    from capbench.methods.caption_fusion.captioning import load_captioner
    from capbench.methods.caption_fusion.config import row_config
    from capbench.methods.caption_fusion.features import extract

    cfg = row_config(config)
    kind = cfg.row.kind
    if kind not in FEATURES:
        raise ValueError(
            f"mopuri2017 row kind {kind!r}: the suite takes the fic or bord rows' captioners "
            "(concat and fused are functions of both, and fused is trained per fold)"
        )
    model = load_captioner(checkpoint).cpu().eval()
    batch = cfg.captioning.embed_batch_size

    def fic(x: list[Tensor]) -> Tensor:
        return model.fic(torch.stack(x))

    def bord(x: list[Tensor]) -> Tensor:
        padded, sizes = pad_images(x)
        return model.bord(padded, sizes)

    def images(records: Sequence[CaptionedImage]) -> Tensor:
        fn, square = (fic, True) if kind == "fic" else (bord, False)
        return torch.from_numpy(extract(records, fn, model.cfg.image_size, square, batch))

    info = {"feature": kind, "image_size": model.cfg.image_size}
    return Encoder(f"caption_fusion:{kind}", images, None, info, no_text_reason=NO_TEXT)
