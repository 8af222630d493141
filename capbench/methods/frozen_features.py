"""Training on a frozen trunk's features, computed once instead of at every step.

When the trunk is frozen (eval-mode BatchNorm, no gradient) and the training images are not
augmented, the trunk's output for an image is the same at every step: running it once per
image before the fit gives the same gradients to everything trained after it, at a fraction of
the cost (on a CPU the trunk is most of a step). Methods that train on frozen features
(Malali's image tower, Show-and-Tell's first phase) compute them here, in record order with a
fixed batch size, so a resumed run computes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from capbench.data.views import collate_skip_none


@torch.no_grad()
def frozen_features(
    embed: Callable[[Tensor], Tensor],
    dataset: Dataset,
    dim: int,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
) -> Tensor:
    """``embed`` (images -> ``(B, dim)``) over every item of an ``images``-view ``dataset``,
    ``(N, dim)`` in item order; an unreadable image's row is NaN (``usable_rows`` drops it)."""
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skip_none
    )
    n = len(dataset)  # type: ignore[arg-type]
    out = torch.full((n, dim), float("nan"), device=device)
    # a DataLoader draws its base seed from the global generator: fork it, so that computing
    # the features leaves the training's random stream (shuffles, dropout) as it was
    with torch.random.fork_rng(devices=[]):
        for batch in loader:
            if "image" in batch:
                out[batch["index"].to(device)] = embed(batch["image"].to(device)).float()
    return out


def usable_rows(features: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """The rows ``index`` of ``features`` whose image was readable, and the mask of them in
    ``index`` (so the batch's other fields can be cut the same way)."""
    rows = features[index.to(features.device)]
    keep = ~torch.isnan(rows).any(dim=1)
    return rows[keep], keep
