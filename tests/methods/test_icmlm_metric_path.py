"""The sariyildiz2020 transfer numbers are what ``capbench.eval``'s VOC07 protocol gives for the
row's trunk: a ci row (TP_Label) run end to end on the tiny scenes data, then its checkpoint
reloaded, the VOC07 train / test images' pooled features of each probed layer computed again and
scored directly by ``voc07_classification.score_features``; the record's ``map_<layer>`` must be
that mAP, and ``n_scored`` the test images."""

from __future__ import annotations

import pytest
import torch

from capbench.data.datamodule import record_images
from capbench.eval.protocols.voc07_classification import (
    DataConfig,
    EvalConfig,
    load_voc_data,
    score_features,
)
from capbench.methods.icmlm.config import row_config
from capbench.methods.icmlm.features import layer_features
from capbench.methods.icmlm.rows import run_row
from capbench.methods.icmlm.train import load_icmlm
from tests.methods.ci_rows import run_ci_row


def test_voc07_metrics_are_the_protocols_on_the_rows_trunk(tiny_scenes, tmp_path):
    torch.manual_seed(0)
    config, ctx, result = run_ci_row(
        run_row, "sariyildiz2020", "tp_label", tiny_scenes, tmp_path / "work"
    )
    cfg = row_config(config)
    v = cfg.voc07
    voc = load_voc_data(DataConfig(root=v.root), ctx.data_root)
    assert result.n_scored == len(voc.test)

    model = load_icmlm(result.checkpoint).cpu().eval()
    side = cfg.model.image_size
    feats = {
        split: layer_features(model.trunk, record_images(recs, side, True), v.layers, v.batch_size, "cpu")[0]
        for split, recs in (("train", voc.train), ("test", voc.test))
    }  # fmt: skip
    ev = EvalConfig(c_grid=tuple(v.c_grid), n_folds=v.n_folds, metric=v.metric, seed=0)
    for layer in v.layers:
        want = score_features(feats["train"][layer], feats["test"][layer], voc, ev)
        assert result.metrics[f"map_{layer}"] == pytest.approx(float(want["mAP"]))
