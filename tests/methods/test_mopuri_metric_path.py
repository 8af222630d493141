"""The mopuri2017 rows report what ``capbench.eval``'s graded-retrieval protocol gives for their
features: the ``fic`` ci row run end to end on the tiny scenes data (Show-and-Tell trained), then
its captioner reloaded from the recorded checkpoint, the queries' and references' FIC features
computed again and scored directly by ``graded_retrieval.score_features``; every nDCG@K of the
record must be that number, and the random row's the protocol's random-ranking nDCG."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from capbench.eval.protocols.graded_retrieval import (
    load_graded_data,
    random_ranking_ndcg,
    score_features,
)
from capbench.methods.caption_fusion.captioning import load_captioner
from capbench.methods.caption_fusion.config import row_config
from capbench.methods.caption_fusion.features import extract
from capbench.methods.caption_fusion.rows import run_row
from tests.methods.ci_rows import run_ci_row


def _run(row: str, tiny_scenes: Path, tmp_path: Path):
    return run_ci_row(run_row, "mopuri2017", row, tiny_scenes, tmp_path / row)


def test_row_metrics_are_the_protocols_on_its_features(tiny_scenes, tmp_path):
    torch.manual_seed(0)
    config, ctx, fic = _run("fic", tiny_scenes, tmp_path)
    cfg = row_config(config)
    data = load_graded_data(cfg.data, ctx.data_root)
    assert fic.n_scored == len(data.queries)
    model = load_captioner(fic.checkpoint)
    images = data.queries + data.references
    x = extract(images, lambda b: model.fic(torch.stack(b)), cfg.show_and_tell.image_size, True)
    n_q = len(data.queries)
    want = score_features(x[:n_q], x[n_q:], data, cfg.eval.ks)
    assert fic.metrics == pytest.approx(want)

    config, ctx, chance = _run("random", tiny_scenes, tmp_path)
    cfg = row_config(config)
    want = random_ranking_ndcg(data, cfg.eval.ks, draws=cfg.row.repeats, seed=0)
    assert chance.metrics == pytest.approx(want)
