"""mopuri2017's evaluation under DDP: every rank runs the row after the captioners' DDP fit.

The ci ``fused`` row is run once in one process (training both captioners into the cache), its
scores and feature caches removed, then run again by two gloo ranks from the same cache: each
captioner's beam search and likelihood test must run once in the job (rank 0), each image be
embedded once per feature, the fusion folds train on rank 0 only (one device, as the code), and
both ranks must report what the single process reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capbench.methods.caption_fusion.rows import run_row
from tests.methods.ci_rows import run_ci_row
from tests.methods.ddp_rows import (
    assert_each_item_embedded_once,
    count_calls,
    run_counted_row,
    run_ranks,
)


def _worker(rank: int, world: int) -> dict:
    from capbench.methods.caption_fusion import captioning, train
    from tests.methods.ddp_rows import record_embedded_items

    calls: dict = {}
    count_calls(captioning, "caption_quality", calls)
    count_calls(train, "train_caption_fusion", calls)
    record_embedded_items(calls)
    return {**run_counted_row(run_row, "mopuri2017", "fused", rank, world, False), **calls}


def test_ddp_ranks_share_the_evaluation_and_report_the_single_process_row(
    tiny_scenes, tmp_path, monkeypatch
):
    _, _, single = run_ci_row(run_row, "mopuri2017", "fused", tiny_scenes, tmp_path / "one")
    cache = Path(os.environ["CAPBENCH_CACHE"]) / "mopuri2017" / "captioners"
    scored = sorted(cache.glob("*/caption_scores.json"))
    features = sorted(cache.glob("*/*.npz"))
    assert len(scored) == 2 and len(features) == 2  # both captioners scored, FIC and BoRD cached
    for path in scored + features:
        path.unlink()

    zero, one = run_ranks(_worker, tiny_scenes, tmp_path / "ddp", monkeypatch)

    assert zero["caption_quality"] == 2 and one["caption_quality"] == 0  # rank 0 scores
    assert zero["train_caption_fusion"] == 5 and one["train_caption_fusion"] == 0  # 5 folds
    assert_each_item_embedded_once(zero, one, calls=2)  # BoRD, then FIC
    assert all(p.is_file() for p in scored + features)  # written again (by rank 0)
    for rank in (zero, one):
        assert rank["metrics"] == pytest.approx(single.metrics, abs=1e-4)
        assert rank["extra"] == sorted(single.extra)


def _fit_worker(rank: int, world: int) -> dict:
    from tests.methods.ddp_rows import record_embedded_items

    calls: dict = {}
    record_embedded_items(calls)
    row = run_counted_row(run_row, "mopuri2017", "show_and_tell", rank, world, True)
    return {**row, **calls}


def test_show_and_tell_ddp_fit_computes_each_frozen_feature_once(
    tiny_scenes, tmp_path, monkeypatch
):
    """A real two-rank DDP fit of Show-and-Tell on its frozen trunk's cached pooled features
    (``capbench.methods.frozen_features``): each training image goes through the trunk on one
    rank only, and both ranks then report the same captioner row."""
    zero, one = run_ranks(_fit_worker, tiny_scenes, tmp_path / "ddp", monkeypatch)
    assert_each_item_embedded_once(zero, one, calls=1)  # the fit's pooled features
    assert zero["metrics"] == one["metrics"] and zero["extra"] == one["extra"]
