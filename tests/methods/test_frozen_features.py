"""``capbench.methods.frozen_features.frozen_features``: one row per item in item order, NaN for
an unreadable image, and under DDP each image embedded once in the job (two gloo ranks), every
rank getting the rows the single process computes."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from capbench.methods.frozen_features import frozen_features
from tests.distributed import run_gloo

N_ITEMS, UNREADABLE = 7, 3


class _Images(Dataset):
    """An ``images``-view stand-in: item ``i`` is a 2 x 2 image of value ``i``; one is corrupt."""

    def __init__(self, n: int = N_ITEMS) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict | None:
        if i == UNREADABLE:
            return None
        return {"image": torch.full((1, 2, 2), float(i)), "index": i, "image_id": str(i)}


def _features(seen: list[int] | None = None, n: int = N_ITEMS) -> torch.Tensor:
    def embed(x: torch.Tensor) -> torch.Tensor:
        values = x.flatten(1)[:, 0]
        if seen is not None:
            seen.extend(int(v) for v in values)
        return torch.stack([values, values.square()], dim=1)

    return frozen_features(embed, _Images(n), dim=2, batch_size=2)


def test_rows_in_item_order_with_nan_for_an_unreadable_image():
    out = _features()
    assert out.shape == (N_ITEMS, 2)
    assert torch.isnan(out[UNREADABLE]).all()
    readable = [i for i in range(N_ITEMS) if i != UNREADABLE]
    expected = torch.tensor([[float(i), float(i * i)] for i in readable])
    torch.testing.assert_close(out[readable], expected)


def _rank_worker(rank: int, world: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    seen: list[int] = []
    rows = _features(seen)  # the rows come back after every rank has embedded its share
    # fewer items than ranks: rank 0's share is every item, yet it must still join the exchange
    return seen, rows, _features(n=1)


def test_ddp_ranks_embed_each_image_once_and_all_get_every_row():
    single = _features()
    (seen0, rows0, one0), (seen1, rows1, one1) = run_gloo(_rank_worker, world=2, timeout=120)
    assert sorted(seen0 + seen1) == [i for i in range(N_ITEMS) if i != UNREADABLE]
    assert not set(seen0) & set(seen1) and seen0 and seen1
    for rows in (rows0, rows1):
        torch.testing.assert_close(rows, single, equal_nan=True)
    for rows in (one0, one1):
        torch.testing.assert_close(rows, _features(n=1))


class _NotedImages(_Images):
    """As a real images view does: the corrupt item is noted for its batch's collate."""

    def __getitem__(self, i: int) -> dict | None:
        if i == UNREADABLE:
            from capbench.data.records import CaptionedImage
            from capbench.data.views import note_corrupt

            note_corrupt(CaptionedImage(str(i), "x.jpg", "train"), OSError("bad"))
        return super().__getitem__(i)


def test_the_unreadable_image_is_reported_for_the_record():
    """Its row stays NaN, and the runner's record names it (``skipped_images``)."""
    from capbench.data.views import skipped_mark, skipped_since

    mark = skipped_mark()
    rows = frozen_features(lambda x: x.flatten(1)[:, :2], _NotedImages(), dim=2, batch_size=2)
    assert torch.isnan(rows[UNREADABLE]).all()
    assert skipped_since(mark) == [f"record {UNREADABLE}: bad"]
