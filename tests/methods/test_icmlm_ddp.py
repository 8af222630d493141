"""ICMLM's transfer features under DDP: after a DDP fit every rank runs the row's evaluation, and
the ranks' BatchNorm statistics differ by their last local batches. Every rank must take rank
0's state (the checkpointed one: ``share_rank_zero_state``, which ``fit_resumable`` calls after
every fit), run the trunk on its share of the images only, and end with the same complete features as one process evaluating rank 0's model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from tests.distributed import run_gloo

N_IMAGES = 7


class _Images(Dataset):
    def __len__(self) -> int:
        return N_IMAGES

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {"image": torch.randn(3, 16, 16, generator=g), "index": i}


def _trunk(rank: int) -> nn.Sequential:
    """Two stages with BatchNorm; the weights agree across ranks, the running means do not."""
    torch.manual_seed(0)
    trunk = nn.Sequential()
    trunk.add_module("layer1", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)))
    trunk.add_module("layer2", nn.Sequential(nn.Conv2d(4, 6, 3, stride=2), nn.BatchNorm2d(6)))
    with torch.no_grad():
        trunk.layer1[1].running_mean.fill_(0.5 * rank)  # as a rank's last training batch leaves it
    return trunk


def _features(trunk: nn.Module, seen: list[int]) -> dict:
    from capbench.methods.icmlm.features import layer_features

    trunk.register_forward_pre_hook(lambda _m, args: seen.append(int(args[0].shape[0])))
    feats, _ = layer_features(trunk, _Images(), ["layer1", "layer2"], batch_size=2)
    return {k: v.tolist() for k, v in feats.items()}


def _worker(rank: int, world: int) -> tuple:
    from capbench.eval.extract import share_rank_zero_state

    trunk = _trunk(rank)
    share_rank_zero_state(trunk)
    seen: list[int] = []
    return seen, _features(trunk, seen)


def test_ddp_ranks_share_the_probe_images_and_agree_with_rank_zero_alone():
    results = run_gloo(_worker, world=2)
    single_seen: list[int] = []
    single = _features(_trunk(0), single_seen)
    assert sum(single_seen) == N_IMAGES  # every image once
    # each image through the trunk once in the whole job, not once per rank
    assert sum(sum(seen) for seen, _ in results) == N_IMAGES
    for _, feats in results:
        for layer in ("layer1", "layer2"):
            torch.testing.assert_close(torch.tensor(feats[layer]), torch.tensor(single[layer]))
    assert len(single["layer1"][0]) == 4 and len(single["layer2"][0]) == 6


def _row_worker(rank: int, world: int) -> dict:
    from capbench.methods.icmlm import evaluate, rows
    from tests.methods.ddp_rows import count_calls, record_embedded_items, run_counted_row

    calls: dict = {}
    count_calls(rows, "_fit_svms", calls)
    count_calls(evaluate, "evaluate_heldout", calls)
    record_embedded_items(calls)
    return {**run_counted_row(rows.run_row, "sariyildiz2020", "icmlm_att_fc", rank, world, True),
            **calls}  # fmt: skip


def test_a_ddp_row_trains_over_the_ranks_and_evaluates_each_item_once(
    tiny_scenes, tmp_path, monkeypatch
):
    """Two ranks train the ci att-fc row with DDP and evaluate it: the VOC07 and COCO probe
    features of each image computed once in the job, the SVMs fitted and the held-out captions
    scored on rank 0 only, and both ranks report the same complete row (every metric the ci
    golden gates)."""
    from tests.methods.ddp_rows import (
        assert_each_item_embedded_once,
        assert_one_complete_row,
        run_ranks,
    )

    zero, one = run_ranks(_row_worker, tiny_scenes, tmp_path / "row", monkeypatch)
    assert zero["share_rank_zero_state"] == one["share_rank_zero_state"] == 1  # a DDP fit
    assert (zero["_fit_svms"], one["_fit_svms"]) == (2, 0)  # VOC07's, COCO's
    assert (zero["evaluate_heldout"], one["evaluate_heldout"]) == (1, 0)
    assert_each_item_embedded_once(zero, one, calls=4)  # the probes' train and test images
    assert_one_complete_row(zero, one, "sariyildiz2020", "icmlm_att_fc")
