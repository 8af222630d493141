"""gordo2017 under DDP: the ci (V+T, V+T) row trained with a real Lightning DDP fit over two
gloo ranks, each mining round's pool embedded once in the job (both ranks then mine from the
same features), then evaluated by both: each database image embedded once in the job, the
scoring, the search index and Figure 3 done on rank 0 only, both ranks reporting the same
complete row."""

from __future__ import annotations

from capbench.methods.semantic_retrieval.rows import run_row
from tests.methods.ddp_rows import (
    assert_each_item_embedded_once,
    assert_one_complete_row,
    run_ranks,
)


def _worker(rank: int, world: int) -> dict:
    from capbench.data import triplets
    from capbench.methods.semantic_retrieval import index, rows
    from tests.methods.ddp_rows import count_calls, record_embedded_items, run_counted_row

    calls: dict = {}
    count_calls(rows, "score_embeddings", calls)
    count_calls(index, "save_index", calls)
    count_calls(triplets, "mine_round", calls)
    record_embedded_items(calls)
    return {**run_counted_row(run_row, "gordo2017", "proposed_vt_vt", rank, world, True), **calls}


def test_a_ddp_row_trains_over_the_ranks_and_embeds_each_image_once(
    tiny_scenes, tmp_path, monkeypatch
):
    zero, one = run_ranks(_worker, tiny_scenes, tmp_path / "row", monkeypatch)
    assert zero["share_rank_zero_state"] == one["share_rank_zero_state"] == 1  # a DDP fit
    assert (zero["score_embeddings"], one["score_embeddings"]) == (1, 0)
    assert (zero["save_index"], one["save_index"]) == (1, 0)
    rounds = zero["mine_round"]
    assert rounds == one["mine_round"] >= 2
    # every round's pool, then the evaluation images
    assert_each_item_embedded_once(zero, one, calls=rounds + 1)
    assert_one_complete_row(zero, one, "gordo2017", "proposed_vt_vt")
