"""Images with their described regions (Visual Genome style) as detection-and-captioning
batches: what a dense captioner (DenseCap) trains on.

An item is the image resized so its longest side is ``longest_side`` (aspect kept, no
padding), its region boxes scaled alike as ``(x1, y1, x2, y2)`` pixels, and their phrases'
word ids. :func:`collate_regions` pads a batch's images to a common size at the bottom and
right (so box coordinates stay valid) and keeps each image's true size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from capbench.data.images import CorruptImageError, build_transform, load_rgb
from capbench.data.records import CaptionedImage
from capbench.data.text import WordVocab
from capbench.data.views import drain_skipped, note_corrupt


class RegionPhrases(Dataset):
    """Records with at least one region, as ``{"image", "boxes", "tokens", "image_id"}``."""

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        vocab: WordVocab,
        longest_side: int,
        max_len: int,
        max_regions: int | None = None,
        min_side: float = 1.0,
    ) -> None:
        self.records = [r for r in records if r.regions]
        if not self.records:
            raise ValueError("RegionPhrases: none of the records has a described region")
        self.vocab = vocab
        self.longest_side = longest_side
        self.max_len = max_len
        self.max_regions = max_regions
        self.min_side = min_side
        self.transform = build_transform(longest_side=longest_side)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        """The item, or None for a corrupt image (``collate_regions`` drops and names it)."""
        from capbench.models.captioners.vocab import encode_texts

        rec = self.records[i]
        try:
            img = load_rgb(rec.image_path)
        except CorruptImageError as err:
            note_corrupt(rec, err)
            return None
        scale = self.longest_side / max(img.size)
        image = self.transform(img)
        h, w = image.shape[1:]
        regions = rec.regions[: self.max_regions] if self.max_regions else rec.regions
        boxes, phrases = [], []
        for r in regions:
            x1, y1 = max(0.0, r.x * scale), max(0.0, r.y * scale)
            x2, y2 = min(float(w), (r.x + r.w) * scale), min(float(h), (r.y + r.h) * scale)
            if x2 - x1 >= self.min_side and y2 - y1 >= self.min_side:
                boxes.append((x1, y1, x2, y2))
                phrases.append(r.phrase)
        if not boxes:
            raise ValueError(
                f"record {rec.image_id} ({rec.image_path}): no region box of at least "
                f"{self.min_side} px after resizing to {self.longest_side}"
            )
        return {
            "image": image,
            "boxes": torch.tensor(boxes, dtype=torch.float32),
            "tokens": encode_texts(self.vocab, phrases, self.max_len),
            "image_id": rec.image_id,
        }


def pad_images(images: Sequence[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
    """``(B, C, H, W)`` zero-padded at the bottom and right, and each image's ``(h, w)``."""
    sizes = [(int(x.shape[1]), int(x.shape[2])) for x in images]
    height, width = max(s[0] for s in sizes), max(s[1] for s in sizes)
    batch = torch.stack([F.pad(x, (0, width - x.shape[2], 0, height - x.shape[1])) for x in images])
    return batch, sizes


def collate_regions(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Padded images, their sizes, and per-image lists of boxes and phrase ids; items whose
    image was replaced by a frozen trunk's map (``features``, ``image_size``) give the maps
    padded alike (``features``) instead of ``image``. Corrupt images (None items) are dropped
    and named in ``skipped``; a batch with none left has empty lists and no pixels."""
    items = [it for it in batch if it is not None]
    skips = {"n_skipped": len(batch) - len(items), "skipped": drain_skipped()}
    if not items:
        return {"image_sizes": [], "boxes": [], "tokens": [], "image_id": [], **skips}
    if "features" in items[0]:
        maps, _ = pad_images([it["features"] for it in items])
        pixels: dict[str, Any] = {"features": maps}
        sizes = [tuple(it["image_size"]) for it in items]
    else:
        images, sizes = pad_images([it["image"] for it in items])
        pixels = {"image": images}
    return {
        **pixels,
        "image_sizes": sizes,
        "boxes": [it["boxes"] for it in items],
        "tokens": [it["tokens"] for it in items],
        "image_id": [it["image_id"] for it in items],
        **skips,
    }
