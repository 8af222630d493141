"""gordo2017 under DDP: the ci (V+T, V+T) row trained with a real Lightning DDP fit over two
gloo ranks, then evaluated by both: each database image embedded once in the job, the scoring,
the search index and Figure 3 done on rank 0 only, both ranks reporting the same complete row."""

from __future__ import annotations

import yaml

from capbench.methods.semantic_retrieval.rows import run_row
from tests.distributed import run_gloo
from tests.methods.ci_rows import ROOT
from tests.methods.ddp_rows import assert_each_item_embedded_once


def _worker(rank: int, world: int) -> dict:
    from capbench.methods.semantic_retrieval import index, rows
    from tests.methods.ddp_rows import count_calls, record_embedded_items, run_counted_row

    calls: dict = {}
    count_calls(rows, "score_embeddings", calls)
    count_calls(index, "save_index", calls)
    record_embedded_items(calls)
    return {**run_counted_row(run_row, "gordo2017", "proposed_vt_vt", rank, world, True), **calls}


def test_a_ddp_row_trains_over_the_ranks_and_embeds_each_image_once(
    tiny_scenes, tmp_path, monkeypatch
):
    monkeypatch.setenv("DDP_ROW_DATA", str(tiny_scenes))
    monkeypatch.setenv("DDP_ROW_WORKDIR", str(tmp_path / "row"))
    zero, one = run_gloo(_worker, world=2)
    assert zero["share_rank_zero_state"] == one["share_rank_zero_state"] == 1  # a DDP fit
    assert zero["score_embeddings"] == 1 and one["score_embeddings"] == 0
    assert zero["save_index"] == 1 and one["save_index"] == 0
    assert_each_item_embedded_once(zero, one, calls=1)  # the evaluation images
    assert zero["metrics"] == one["metrics"] and zero["n_scored"] == one["n_scored"]
    assert zero["extra"] == one["extra"]
    golden = yaml.safe_load((ROOT / "benchmarks/gordo2017/golden_ci.yaml").read_text())
    gated = {m for table in golden["tables"].values() for m in table.get("proposed_vt_vt", {})}
    assert gated and gated <= set(zero["metrics"])
