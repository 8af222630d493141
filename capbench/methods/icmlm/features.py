"""Frozen features for transfer: each named trunk layer's output, average-pooled over space.

Goyal et al. 2019's VOC07 benchmark (which ICMLM follows) probes several depths of a ResNet;
``layer_features`` runs the trunk once per batch and keeps every requested stage's map, pooled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset


def named_layers(trunk: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """The trunk's submodules called ``layers`` (an unknown name lists the known ones)."""
    found = dict(trunk.named_modules())
    missing = [name for name in layers if name not in found]
    if missing:
        top = [n for n, _ in trunk.named_children()]
        raise KeyError(f"trunk has no layer(s) {missing}; its stages are {top}")
    return {name: found[name] for name in layers}


@torch.no_grad()
def layer_features(
    trunk: nn.Module,
    images: Dataset,
    layers: Sequence[str],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, np.ndarray], int]:
    """``{layer: (N, C_layer)}`` average-pooled features of ``images`` (dicts with ``image``),
    in order, in eval mode and fp32, and how many images could not be read. An unreadable image
    keeps its row, as zeros (the suite's probes do the same): the test set stays whole, so the
    mAP stays over the split's images, and the count goes in the row's record.

    After a DDP fit every rank runs the row's evaluation: each rank then runs the trunk on its
    share of the images only and the ranks exchange the pooled rows
    (:func:`capbench.eval.extract.embed_in_order`), so every image goes through the trunk once
    in the whole job and every rank gets the same arrays; in one process it is a plain batched
    loop over the images in order."""
    from capbench.data.views import collate_skip_none, report_skipped
    from capbench.eval.extract import embed_in_order
    from capbench.eval.unreadable import zero_unreadable_rows

    modules = named_layers(trunk, layers)
    grabbed: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=name: grabbed.__setitem__(n, out))
        for name, m in modules.items()
    ]
    was_training = trunk.training
    trunk.eval().to(device)

    if len(images) == 0:  # type: ignore[arg-type]
        raise ValueError("layer_features: no images to probe")
    widths: dict[str, int] = {}

    def run(batch_images: torch.Tensor) -> torch.Tensor:
        trunk(batch_images.to(device))
        widths.update((n, int(grabbed[n].shape[1])) for n in layers)
        return torch.cat([grabbed[n].float().mean(dim=(2, 3)) for n in layers], dim=1)

    def learn_widths() -> None:
        """The channel widths from one small blank image, for rows that no image gave: a batch
        of unreadable images only, or a DDP rank with no share (fewer images than ranks)."""
        if not widths:
            run(torch.zeros(1, 3, 64, 64))

    def pooled(idx: Sequence[int]) -> torch.Tensor:
        items = [images[i] for i in idx]
        batch = collate_skip_none(items)
        if not batch["n_skipped"]:
            return run(batch["image"])
        report_skipped(batch["skipped"])
        learn_widths()  # NaN rows for the unreadable images, zeroed once gathered
        out = torch.full((len(items), sum(widths.values())), float("nan"))
        if "image" in batch:
            out[torch.tensor([it is not None for it in items])] = run(batch["image"])
        return out

    try:
        rows = embed_in_order(pooled, len(images), batch_size).numpy()
        learn_widths()
    finally:
        for h in hooks:
            h.remove()
        trunk.train(was_training)
    n_unreadable = zero_unreadable_rows(rows, "layer_features: the probe's set")
    ends = np.cumsum([widths[n] for n in layers])
    feats = {
        name: np.ascontiguousarray(rows[:, end - widths[name] : end])
        for name, end in zip(layers, ends)
    }
    return feats, n_unreadable
