"""Frozen features for transfer: each named trunk layer's output, average-pooled over space.

Goyal et al. 2019's VOC07 benchmark (which ICMLM follows) probes several depths of a ResNet;
``layer_features`` runs the trunk once per batch and keeps every requested stage's map, pooled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from capbench.data.views import collate_skip_none


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
    in order, in eval mode and fp32. An unreadable image is an error: a probe needs every row."""
    modules = named_layers(trunk, layers)
    grabbed: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=name: grabbed.__setitem__(n, out))
        for name, m in modules.items()
    ]
    was_training = trunk.training
    trunk.eval().to(device)
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    try:
        loader = DataLoader(images, batch_size=batch_size, collate_fn=collate_skip_none)
        for batch in loader:
            if batch["n_skipped"]:
                raise ValueError(f"unreadable image(s) in the probe's set: {batch['skipped']}")
            trunk(batch["image"].to(device))
            for name in layers:
                out[name].append(grabbed[name].float().mean(dim=(2, 3)).cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
        trunk.train(was_training)
    return {name: np.concatenate(parts) for name, parts in out.items()}
