"""reed2016 under DDP: the ci DS-SJE row trained with a real Lightning DDP fit over two gloo
ranks, then evaluated by both: the test images' features extracted once (rank 0) and each test
caption embedded once in the job, the zero-shot scores
(and the sentences-per-class curve) computed on rank 0 only, both ranks reporting the same
complete row."""

from __future__ import annotations

from capbench.methods.fine_grained_sje.rows import run_row
from tests.methods.ddp_rows import (
    assert_each_item_embedded_once,
    assert_one_complete_row,
    run_ranks,
)


def _worker(rank: int, world: int) -> dict:
    from capbench.methods.fine_grained_sje import rows, train
    from tests.methods.ddp_rows import count_calls, record_embedded_items, run_counted_row

    calls: dict = {"test_features": 0}
    count_calls(rows, "_zero_shot_scores", calls)
    features = train.image_features

    def counted_features(*args, **kwargs):
        calls["test_features"] += not kwargs.get("train", True)
        return features(*args, **kwargs)

    train.image_features = counted_features
    record_embedded_items(calls)
    return {**run_counted_row(run_row, "reed2016", "bow_ds", rank, world, True), **calls}


def test_a_ddp_row_trains_over_the_ranks_and_embeds_each_test_caption_once(
    tiny_scenes, tmp_path, monkeypatch
):
    zero, one = run_ranks(_worker, tiny_scenes, tmp_path / "row", monkeypatch)
    assert zero["share_rank_zero_state"] == one["share_rank_zero_state"] == 1  # a DDP fit
    assert (zero["_zero_shot_scores"], one["_zero_shot_scores"]) == (1, 0)
    assert (zero["test_features"], one["test_features"]) == (1, 0)  # test images: rank 0
    assert_each_item_embedded_once(zero, one, calls=1)  # the test captions
    assert_one_complete_row(zero, one, "reed2016", "bow_ds")
