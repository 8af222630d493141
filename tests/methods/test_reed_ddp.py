"""reed2016 under DDP: the ci DS-SJE row trained with a real Lightning DDP fit over two gloo
ranks, then evaluated by both: each test caption embedded once in the job, the zero-shot scores
(and the sentences-per-class curve) computed on rank 0 only, both ranks reporting the same
complete row."""

from __future__ import annotations

import yaml

from capbench.methods.fine_grained_sje.rows import run_row
from tests.distributed import run_gloo
from tests.methods.ci_rows import ROOT
from tests.methods.ddp_rows import assert_each_item_embedded_once


def _worker(rank: int, world: int) -> dict:
    from capbench.methods.fine_grained_sje import rows
    from tests.methods.ddp_rows import count_calls, record_embedded_items, run_counted_row

    calls: dict = {}
    count_calls(rows, "_zero_shot_scores", calls)
    record_embedded_items(calls)
    return {**run_counted_row(run_row, "reed2016", "bow_ds", rank, world, True), **calls}


def test_a_ddp_row_trains_over_the_ranks_and_embeds_each_test_caption_once(
    tiny_scenes, tmp_path, monkeypatch
):
    monkeypatch.setenv("DDP_ROW_DATA", str(tiny_scenes))
    monkeypatch.setenv("DDP_ROW_WORKDIR", str(tmp_path / "row"))
    zero, one = run_gloo(_worker, world=2)
    assert zero["share_rank_zero_state"] == one["share_rank_zero_state"] == 1  # a DDP fit
    assert zero["_zero_shot_scores"] == 1 and one["_zero_shot_scores"] == 0
    assert_each_item_embedded_once(zero, one, calls=1)  # the test captions
    assert zero["metrics"] == one["metrics"] and zero["n_scored"] == one["n_scored"]
    golden = yaml.safe_load((ROOT / "benchmarks/reed2016/golden_ci.yaml").read_text())
    gated = {m for table in golden["tables"].values() for m in table.get("bow_ds", {})}
    assert gated and gated <= set(zero["metrics"])
