"""The malali2022 row reports what ``capbench.eval.protocols.image_text_retrieval`` gives for its
model's embeddings: a ci row (Malali, with its quantizer) run end to end on the tiny scenes data,
then its checkpoint reloaded, the test images and captions embedded again and scored directly by
the protocol, continuous and as codes; every metric of the record must be that number."""

from __future__ import annotations

import pytest
import torch

from capbench.eval.protocols.image_text_retrieval import load_eval_data, score_embeddings
from capbench.methods.quantized_embedding.config import row_config
from capbench.methods.quantized_embedding.rows import run_row
from capbench.methods.quantized_embedding.train import (
    build_datamodule,
    eval_images,
    load_quantized_embedding,
)
from capbench.methods.training import resolve_pretrain_data
from tests.methods.ci_rows import run_ci_row


def test_row_metrics_are_the_protocols_on_its_embeddings(tiny_scenes, tmp_path):
    torch.manual_seed(0)
    config, ctx, result = run_ci_row(
        run_row, "malali2022", "malali", tiny_scenes, tmp_path / "work"
    )
    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    ev = load_eval_data(cfg.data, cfg.eval, ctx.data_root)
    assert result.n_scored == len(ev.images) + len(ev.captions)

    model = load_quantized_embedding(result.checkpoint).cpu().eval()
    data = {"source": cfg.data.name, "root": str(ctx.data_root / cfg.data.root),
            "reader_options": dict(cfg.data.reader_options), "train_splits": (cfg.data.train_split,)}  # fmt: skip
    tokenizer = build_datamodule(cfg.method, data, seed=0).tokenizer
    img = model.embed_image_dataset(eval_images(cfg.method, ev.images))
    txt = model.embed_captions(ev.captions, tokenizer)
    want = score_embeddings(ev, img, txt, cfg.eval, measure=cfg.model.measure)
    with torch.no_grad():
        img_db, txt_db = model.reconstruct(img), model.reconstruct(txt)
    want.update(
        score_embeddings(
            ev, img, txt, cfg.eval, measure=cfg.model.measure, img_db=img_db, txt_db=txt_db,
            suffix="_pq",
        )
    )  # fmt: skip
    assert any(k.endswith("_pq") for k in want) and set(result.metrics) == set(want)
    assert result.metrics == pytest.approx(want)
