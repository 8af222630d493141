"""Training on a frozen trunk's features, computed once instead of at every step.

When the trunk is frozen (eval-mode BatchNorm, no gradient) and the training images are not
augmented, the trunk's output for an image is the same at every step: running it once per
image before the fit gives the same gradients to everything trained after it, at a fraction of
the cost (on a CPU the trunk is most of a step). Methods that train on frozen features
(Malali's image tower, Show-and-Tell's first phase, ICMLM's head-only epochs, whose maps are
flattened into rows) compute them here, in record order with a fixed batch size, so a resumed
run computes the same numbers. The region captioner, whose batches are items with boxes and
phrases, keeps each image's map in its item instead (``FrozenMapItems``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

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
    ``(N, dim)`` in item order; an unreadable image's row is NaN (``usable_rows`` drops it).

    Under DDP (called by every rank, as from a distributed fit's ``on_fit_start``) each rank
    embeds its share of the items and every rank gets all rows
    (``capbench.eval.extract.rows_in_order``): each image goes through the trunk once in the job,
    not once per rank. Outside DDP it is one loop over every item."""
    from capbench.data.datamodule import CountingDataLoader
    from capbench.eval.extract import rows_in_order, world_size

    n = len(dataset)  # type: ignore[arg-type]

    def share_rows(share: list[int]) -> Tensor:
        # an item's "index" is its place in ``dataset``; its row is its place in ``share``
        row_of = torch.full((n,), -1, dtype=torch.long)
        row_of[torch.as_tensor(share, dtype=torch.long)] = torch.arange(len(share))
        loader = CountingDataLoader(  # reports each corrupt file (its row stays NaN)
            Subset(dataset, share),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_skip_none,
        )
        out = torch.full((len(share), dim), float("nan"), device=device)
        for batch in loader:
            if "image" in batch:
                rows = row_of[batch["index"]].to(device)
                out[rows] = embed(batch["image"].to(device)).float()
        return out

    # a DataLoader draws its base seed from the global generator: fork it, so that computing
    # the features leaves the training's random stream (shuffles, dropout) as it was
    with torch.random.fork_rng(devices=[]):
        if world_size() == 1:  # one process: the rows stay where they were computed
            return share_rows(list(range(n)))
        # the ranks' rows are exchanged on the CPU (gather_in_order), then go back to ``device``
        return rows_in_order(share_rows, n).to(device)


def usable_rows(features: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """The rows ``index`` of ``features`` whose image was readable, and the mask of them in
    ``index`` (so the batch's other fields can be cut the same way)."""
    rows = features[index.to(features.device)]
    keep = ~torch.isnan(rows).any(dim=1)
    return rows[keep], keep


class FrozenMapItems(Dataset):
    """The items of a dataset whose ``"image"`` is replaced by a frozen trunk's map of it
    (``"features"``, ``(C, h, w)``) and the image's ``"image_size"`` ``(h, w)``; every other
    field is kept. The maps are computed once, here, for dense models (the region captioner)
    whose frozen trunk would otherwise run at every step. Images of equal size go through the
    trunk together, so each map is the trunk's output for that image alone: where a batch's
    images differ in size, padding the maps (``collate_regions``) is not the map of the padded
    batch (equal on the scenes data, whose images share one size). A corrupt image's item is
    left out and named in ``skipped`` (and logged once)."""

    def __init__(
        self, dataset: Dataset, trunk: Callable[[Tensor], Tensor], batch_size: int = 32
    ) -> None:
        from capbench.data.views import drain_skipped, report_skipped

        self.items: list[dict] = []
        self.skipped: list[str] = []
        pending: list[dict] = []
        for i in range(len(dataset)):  # type: ignore[arg-type]
            item = dataset[i]  # None: a corrupt image, noted by the dataset
            if item is None:
                self.skipped += drain_skipped() or [f"item {i}: unreadable image"]
            else:
                pending.append(item)
            if len(pending) == batch_size or i == len(dataset) - 1:  # type: ignore[arg-type]
                self.items += _with_maps(pending, trunk)
                pending = []
        report_skipped(self.skipped)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


@torch.no_grad()
def _with_maps(items: list[dict], trunk: Callable[[Tensor], Tensor]) -> list[dict]:
    """``items`` with their images replaced by ``trunk``'s maps (same-sized images batched)."""
    by_size: dict[tuple[int, ...], list[int]] = {}
    for k, it in enumerate(items):
        by_size.setdefault(tuple(it["image"].shape), []).append(k)
    out: list[dict] = [{} for _ in items]
    for members in by_size.values():
        maps = trunk(torch.stack([items[k]["image"] for k in members]))
        for k, fmap in zip(members, maps):
            rest = {key: v for key, v in items[k].items() if key != "image"}
            size = (int(items[k]["image"].shape[1]), int(items[k]["image"].shape[2]))
            out[k] = {**rest, "features": fmap.clone(), "image_size": size}
    return out
