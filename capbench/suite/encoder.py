"""What the suite scores: an image encoder, and a text tower where the method has one.

An :class:`Encoder` is two functions rather than a module so that every method keeps its own
preprocessing (image size, padding, tokenizer) and its own embedding code: the suite only asks
for ``(N, D)`` features of records and of captions. :func:`from_image_module` wraps any
``nn.Module`` that maps a batch of images to ``(B, D)``, which is what a user brings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from capbench.data.records import CaptionedImage

ImageFn = Callable[[Sequence[CaptionedImage]], Tensor]
TextFn = Callable[[Sequence[str]], Tensor]

NO_TEXT_TOWER = "no text tower"


@dataclass
class Encoder:
    """``images(records) -> (N, D)`` (a NaN row for an unreadable image) and, when the encoder
    has a text tower in the same space, ``texts(captions) -> (M, D)``."""

    name: str
    images: ImageFn
    texts: TextFn | None = None
    info: dict[str, Any] = field(default_factory=dict)  # provenance, shown in the run record
    # why the text tower is missing, when it is (a cell that does not apply says why)
    no_text_reason: str = NO_TEXT_TOWER


class GlobalPool(nn.Module):
    """A trunk's feature map averaged over space: the frozen feature the suite probes."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, images: Tensor) -> Tensor:
        out = self.trunk(images)
        return out.mean(dim=(2, 3)) if out.dim() == 4 else out


@torch.no_grad()
def embed_with_module(
    module: nn.Module,
    records: Sequence[CaptionedImage],
    image_size: int,
    pad_to_square: bool = True,
    batch_size: int = 64,
) -> Tensor:
    """``module`` on every record's image at ``image_size`` (longest side), in order, fp32, eval
    mode; unreadable images give NaN rows (and are counted by the DataModule)."""
    from capbench.data.datamodule import record_images

    dataset = record_images(records, image_size, pad_to_square)
    was = module.training
    module.eval()
    rows: list[Tensor | None] = []
    width = None
    loader = DataLoader(range(len(dataset)), batch_size=batch_size)
    for idx in loader:
        items = [dataset[int(i)] for i in idx]
        ok = [it is not None for it in items]
        if any(ok):
            x = torch.stack([it["image"] for it in items if it is not None])
            # channels-last input: oneDNN's faster CPU convolutions (same features up to rounding)
            x = x.contiguous(memory_format=torch.channels_last)
            y = _features(module(x), x.shape[0])
            good_records = [records[int(i)] for i, good in zip(idx, ok, strict=True) if good]
            _require_finite(y, good_records)
            width = y.shape[1]
            it_y = iter(y)
            rows.extend(next(it_y) if good else None for good in ok)
        else:
            rows.extend([None] * len(items))
    module.train(was)
    if width is None:
        raise ValueError(f"none of the {len(records)} images could be read")
    nan = torch.full((width,), float("nan"))
    return torch.stack([nan if r is None else r for r in rows])


class EncoderOutputError(ValueError):
    """A user's encoder returned features the protocols cannot score (reported in one line)."""


def _features(out: Any, batch: int) -> Tensor:
    """The module's output as ``(B, D)`` fp32 on the CPU; any other shape is the user's encoder
    returning something the protocols cannot score, said here rather than as a NaN metric."""
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise EncoderOutputError(
            f"the encoder returned {got} for a batch of {batch} images; expected ({batch}, D) "
            f"features (or a ({batch}, C, H, W) map, averaged over space)"
        )
    return out.float().cpu()


def _require_finite(features: Tensor, records: Sequence[CaptionedImage]) -> None:
    """NaN rows mean "image not read" to the evaluations (they zero or refuse them), so an
    encoder's own non-finite output must not pass for that: it is an error naming the images."""
    bad = (~torch.isfinite(features).all(dim=1)).nonzero().flatten().tolist()
    if bad:
        names = ", ".join(records[i].image_path for i in bad[:3])
        raise EncoderOutputError(
            f"the encoder returned non-finite features (NaN or inf) for {len(bad)} of "
            f"{len(records)} images of a batch: {names}"
        )


def from_image_module(
    name: str,
    module: nn.Module,
    image_size: int = 224,
    pad_to_square: bool = True,
    texts: TextFn | None = None,
    batch_size: int = 64,
    info: dict[str, Any] | None = None,
) -> Encoder:
    """An :class:`Encoder` around a module mapping ``(B, 3, H, W)`` ImageNet-normalised images to
    ``(B, D)`` features (or a feature map, averaged over space)."""
    pooled = GlobalPool(module)  # a (B, D) output passes through unchanged

    def images(records: Sequence[CaptionedImage]) -> Tensor:
        return embed_with_module(pooled, records, image_size, pad_to_square, batch_size)

    return Encoder(name, images, texts, dict(info or {}))
