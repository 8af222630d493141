"""Does a captioner's text depend on what it looks at? A likelihood test beside BLEU / CIDEr.

Beam search shows only a captioner's most probable text. Where each thing is described in many
templates and synonyms (the scenes region phrases: "the ring is rosy", "a medium rosy ring",
"ring on the road", "pink colored donut"), the words that name the thing carry little of that
probability, and the most probable phrase can be the same generic one for every region while
the model still explains each region's own phrases better than another's. BLEU, CIDEr and the
count of distinct outputs then call it ungrounded; this test asks the other question.

For each held-out text: its mean per-word cross-entropy (teacher-forced) given its own visual
code, and given the code of another visual input. ``text_preference`` is the share of texts
their own code explains better (ties count half): 0.5 when the code is ignored, 1.0 when it
always decides. The other input is chosen so that only what is described differs:

* Show-and-Tell: each caption of a held-out image against the next held-out image's code.
* Region captioner: each phrase of a held-out image's region (its ground-truth box, as the
  region head codes it) against another region of the same image that overlaps it by IoU below
  ``max_iou`` and is about as large (the scene, the image and the box size are shared; the
  described thing is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from capbench.data.records import CaptionedImage


def preference_rate(own: Tensor, other: Tensor) -> float:
    """Share of ``own < other`` (per-text losses), ties counting half."""
    if len(own) == 0:
        return float("nan")
    return float(((own < other).float() + 0.5 * (own == other).float()).mean())


@torch.no_grad()
def caption_preference(
    module: Any, held: Sequence[CaptionedImage], batch_size: int = 16
) -> dict[str, float]:
    """Show-and-Tell: each held-out caption given its own image against the next image's."""
    from capbench.methods.caption_fusion.features import extract
    from capbench.models.captioners.vocab import encode_texts

    net, cfg = module.net, module.cfg
    device = module.device
    codes = torch.as_tensor(
        extract(
            held,
            lambda x: net.image_embedding(torch.stack(x).to(device)),
            cfg.image_size,
            True,
            batch_size,
            shared=False,  # the scorer's own work (rank 0's under DDP): no collective
        )
    ).to(device)
    own, other = [], []
    for i, rec in enumerate(held if len(held) > 1 else []):  # one image has no other to compare
        if not rec.captions:
            continue
        tokens = encode_texts(module.vocab, rec.captions, cfg.max_len).to(device)
        n = len(tokens)
        own.append(net.decoder.nll(codes[i].expand(n, -1), tokens).cpu())
        other.append(net.decoder.nll(codes[(i + 1) % len(held)].expand(n, -1), tokens).cpu())
    own_t = torch.cat(own) if own else torch.zeros(0)
    other_t = torch.cat(other) if other else torch.zeros(0)
    return {
        "text_preference": preference_rate(own_t, other_t),
        "text_preference_n": float(len(own_t)),
    }


def region_partners(
    boxes: Tensor, max_iou: float, max_area_ratio: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """For boxes ``(R, 4)`` x1y1x2y2 of one image: which have a partner (a box elsewhere in the
    image, IoU below ``max_iou``, and about as large, area within ``max_area_ratio``: what
    differs is what the box holds) and, for those, one partner's index drawn uniformly."""
    from torchvision.ops import box_iou

    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ratio = area[:, None] / area[None, :].clamp(min=1e-6)
    apart = (box_iou(boxes, boxes) < max_iou) & (ratio <= max_area_ratio)
    apart &= ratio >= 1 / max_area_ratio
    has = apart.any(dim=1)
    if not has.any():
        return has, torch.zeros(0, dtype=torch.long)
    return has, torch.multinomial(apart[has].float(), 1, generator=generator).squeeze(1)


@torch.no_grad()
def region_phrase_preference(
    module: Any,
    held: Sequence[CaptionedImage],
    max_iou: float = 0.3,
    max_area_ratio: float = 2.0,
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, float]:
    """Region captioner: each held-out region's phrase given its own box against another box of
    the same image (IoU below ``max_iou``, area within ``max_area_ratio`` of its own, drawn with
    ``seed``); a region without such a partner (the whole scene) is left out."""
    from torch.utils.data import DataLoader

    from capbench.data.region_phrases import RegionPhrases, collate_regions

    net, cfg = module.net, module.cfg
    device = module.device
    data = RegionPhrases([r for r in held if r.regions], module.vocab, cfg.image_size, cfg.max_len)
    gen = torch.Generator().manual_seed(seed)
    own, other = [], []
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate_regions):
        if not batch["image_sizes"]:
            continue
        codes = net.region_codes(batch["image"].to(device), [b.to(device) for b in batch["boxes"]])
        start = 0
        for boxes, tokens in zip(batch["boxes"], batch["tokens"]):
            code = codes[start : start + len(boxes)]
            start += len(boxes)
            has, partner = region_partners(boxes, max_iou, max_area_ratio, gen)
            if not has.any():
                continue
            has, partner, words = has.to(device), partner.to(device), tokens[has].to(device)
            own.append(net.decoder.nll(code[has], words).cpu())
            other.append(net.decoder.nll(code[partner], words).cpu())
    own_t = torch.cat(own) if own else torch.zeros(0)
    other_t = torch.cat(other) if other else torch.zeros(0)
    return {
        "text_preference": preference_rate(own_t, other_t),
        "text_preference_n": float(len(own_t)),
    }


def text_preference(module: Any, held: Sequence[CaptionedImage], seed: int = 0) -> dict[str, float]:
    """The test for either captioner, in eval mode (no dropout), the module's mode put back."""
    from capbench.methods.caption_fusion.captioning import RegionCaptionerModule

    was_training = module.training
    module.eval()
    try:
        if isinstance(module, RegionCaptionerModule):
            return region_phrase_preference(module, held, seed=seed)
        return caption_preference(module, held)
    finally:
        module.train(was_training)
