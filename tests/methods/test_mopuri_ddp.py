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


def _counting_worker(rank: int, world: int) -> dict:
    """The row on one rank, counting the work it does (spawned: module level)."""
    import capbench.eval.extract as ex
    from capbench.methods.caption_fusion import captioning, train

    calls = {"caption_quality": 0, "fusion_fits": 0, "embedded": []}
    quality, fit, embed = captioning.caption_quality, train.train_caption_fusion, ex.embed_in_order

    def counted_quality(*a, **k):
        calls["caption_quality"] += 1
        return quality(*a, **k)

    def counted_fit(*a, **k):
        calls["fusion_fits"] += 1
        return fit(*a, **k)

    def counted_embed(encode, n_items, *a, **k):
        seen: list[int] = []
        calls["embedded"].append((n_items, seen))
        return embed(lambda idx: (seen.extend(idx), encode(idx))[1], n_items, *a, **k)

    captioning.caption_quality = counted_quality
    train.train_caption_fusion = counted_fit
    ex.embed_in_order = counted_embed
    _, _, result = run_ci_row(
        run_row, "mopuri2017", "fused", Path(os.environ["MOPURI_DDP_DATA"]),
        Path(os.environ["MOPURI_DDP_WORKDIR"]),
    )  # fmt: skip
    return {"metrics": result.metrics, "extra_keys": sorted(result.extra), **calls}


def test_ddp_ranks_share_the_evaluation_and_report_the_single_process_row(
    tiny_scenes, tmp_path, monkeypatch
):
    from tests.distributed import run_gloo

    _, _, single = run_ci_row(run_row, "mopuri2017", "fused", tiny_scenes, tmp_path / "one")
    cache = Path(os.environ["CAPBENCH_CACHE"]) / "mopuri2017" / "captioners"
    scored = sorted(cache.glob("*/caption_scores.json"))
    features = sorted(cache.glob("*/*.npz"))
    assert len(scored) == 2 and len(features) == 2  # both captioners scored, FIC and BoRD cached
    for path in scored + features:
        path.unlink()

    monkeypatch.setenv("MOPURI_DDP_DATA", str(tiny_scenes))
    monkeypatch.setenv("MOPURI_DDP_WORKDIR", str(tmp_path / "ddp"))
    zero, one = run_gloo(_counting_worker, world=2, timeout=150)

    assert zero["caption_quality"] == 2 and one["caption_quality"] == 0  # rank 0 scores
    assert zero["fusion_fits"] == 5 and one["fusion_fits"] == 0  # 5 folds, on rank 0
    assert len(zero["embedded"]) == len(one["embedded"]) == 2  # BoRD, then FIC
    for (n, seen0), (_, seen1) in zip(zero["embedded"], one["embedded"]):
        assert sorted(seen0 + seen1) == list(range(n))  # each image once in the job
        assert seen0 and seen1  # ... by both ranks
    assert all(p.is_file() for p in scored + features)  # written again (by rank 0)
    for rank in (zero, one):
        assert rank["metrics"] == pytest.approx(single.metrics, abs=1e-4)
        assert rank["extra_keys"] == sorted(single.extra)
