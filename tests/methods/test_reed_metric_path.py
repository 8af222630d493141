"""The reed2016 rows report what ``capbench.eval``'s zero-shot protocol gives for their model: the
``bow_ds`` ci row run end to end on the tiny scenes CUB layout, then its finished model loaded
from the row's workdir, the unseen classes' image features and caption embeddings computed again
and scored directly by ``zero_shot.score_zero_shot``; every metric must be that number and
``n_scored`` the test images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from capbench.eval.protocols.zero_shot import score_zero_shot
from capbench.methods.fine_grained_sje.config import row_config
from capbench.methods.fine_grained_sje.rows import run_row
from capbench.methods.fine_grained_sje.train import (
    build_datamodule,
    read_records,
    train_fine_grained_sje,
    zero_shot_side,
)
from capbench.methods.training import resolve_pretrain_data
from tests.methods.ci_rows import run_ci_row


def test_row_metrics_are_the_protocols_on_its_model(tiny_scenes, tmp_path):
    torch.manual_seed(0)
    config, ctx, result = run_ci_row(run_row, "reed2016", "bow_ds", tiny_scenes, tmp_path / "work")

    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    root = Path(tiny_scenes) / cfg.data.root
    data = {"source": cfg.data.name, "root": str(root), "train_splits": cfg.data.train_splits,
            "reader_options": cfg.data.reader_options}  # fmt: skip
    dm = build_datamodule(cfg.method, data, seed=0)
    # the finished run in the row's workdir is loaded, not trained again
    model, checkpoint = train_fine_grained_sje(cfg.method, dm, ctx.workdir, seed=0)
    assert str(checkpoint) == result.checkpoint
    records = read_records(cfg.data.name, root, [cfg.data.test_split], cfg.data.reader_options)
    test = zero_shot_side(cfg.method, dm, cfg.data.name, root, records, seed=0)
    captions = model.cpu().eval().embed_captions(test.caption_tokens, cfg.train.embed_batch_size)
    want = score_zero_shot(
        test.image_features, test.image_labels, captions, test.caption_labels, cfg.eval.ap_k
    )
    assert result.n_scored == len(test.image_labels)
    assert result.metrics == pytest.approx(want)
