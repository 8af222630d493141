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
) -> dict[str, np.ndarray]:
    """``{layer: (N, C_layer)}`` average-pooled features of ``images`` (dicts with ``image``),
    in order, in eval mode and fp32. An unreadable image is an error: a probe needs every row.

    After a DDP fit every rank runs the row's evaluation: each rank then runs the trunk on its
    share of the images only and the ranks exchange the pooled rows
    (:func:`capbench.eval.extract.embed_in_order`), so every image goes through the trunk once
    in the whole job and every rank gets the same arrays; in one process it is a plain batched
    loop over the images in order."""
    from capbench.data.views import collate_skip_none
    from capbench.eval.extract import embed_in_order

    modules = named_layers(trunk, layers)
    grabbed: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=name: grabbed.__setitem__(n, out))
        for name, m in modules.items()
    ]
    was_training = trunk.training
    trunk.eval().to(device)

    widths: dict[str, int] = {}

    def pooled(idx: Sequence[int]) -> torch.Tensor:
        batch = collate_skip_none([images[i] for i in idx])
        if batch["n_skipped"]:
            raise ValueError(f"unreadable image(s) in the probe's set: {batch['skipped']}")
        trunk(batch["image"].to(device))
        widths.update((n, int(grabbed[n].shape[1])) for n in layers)
        return torch.cat([grabbed[n].float().mean(dim=(2, 3)) for n in layers], dim=1)

    if len(images) == 0:  # type: ignore[arg-type]
        raise ValueError("layer_features: no images to probe")
    try:
        rows = embed_in_order(pooled, len(images), batch_size).numpy()
        if not widths:  # a DDP rank with no share (fewer images than ranks) splits the rows too
            pooled([0])
    finally:
        for h in hooks:
            h.remove()
        trunk.train(was_training)
    ends = np.cumsum([widths[n] for n in layers])
    return {
        name: np.ascontiguousarray(rows[:, end - widths[name] : end])
        for name, end in zip(layers, ends)
    }
