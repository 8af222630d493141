"""Row targets of Malali & Keller 2022 (``benchmarks/malali2022``): every row (Malali, its
ablations, VSE0, VSE++, the untrained towers) is the same target; the config's sections say
which model it is, ``row.trained: false`` scores the towers as initialised.

A row trains on the dataset's Karpathy train split, embeds the test images and every caption,
and scores them with ``capbench.eval.protocols.image_text_retrieval``: Recall@1/5/10 both ways
and rsum over every test image (``*_all``: COCO 5K, Flickr 1K) and, with ``eval.folds``, the
fold mean (``*_1k``: COCO 1K). With a quantizer the database side is also scored as codes
(``*_pq``, asymmetric distance) and a faiss ``IndexPQ`` built from the learned codebooks is
checked against that exact search (``extra.faiss_pq``); ``extra`` holds the bytes per item of
each form and the final margin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.eval.protocols.image_text_retrieval import (
    EvalData,
    bytes_per_item,
    dataset_root,
    faiss_pq_search,
    load_eval_data,
    score_embeddings,
    top_k,
)
from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext, RowResult
from capbench.methods.quantized_embedding.config import row_config
from capbench.methods.training import resolve_pretrain_data


def faiss_agreement(model: Any, queries: torch.Tensor, database: torch.Tensor, k: int) -> dict:
    """faiss ``IndexPQ`` (learned codebooks, the items' codes) against the exact search of the
    codes' reconstructions: the share of queries whose top-``k`` lists agree, and the largest
    gap between the two searches' k-th squared distances (ties may order items differently)."""
    q = model.quantizer
    codes = q.encode(database.to(model.device)).cpu().numpy()
    books = q.codebooks.detach().float().cpu().numpy()
    recon = q.decode(torch.as_tensor(codes, device=model.device)).detach().float().cpu()
    dist, idx = faiss_pq_search(books, codes, queries.numpy(), k)
    exact = top_k(queries, recon, k, "l2")
    exact_d = ((queries.unsqueeze(1) - recon[exact]) ** 2).sum(-1).numpy()
    same = (np.sort(idx, 1) == np.sort(exact.numpy(), 1)).all(1)
    return {
        "queries": int(queries.shape[0]),
        "k": int(k),
        "same_top_k": float(same.mean()),
        "max_kth_distance_gap": float(np.abs(dist[:, -1] - exact_d[:, -1]).max()),
    }


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every malali2022 row."""
    from capbench.methods.quantized_embedding.train import (
        build_datamodule,
        eval_images,
        train_quantized_embedding,
        untrained_model,
    )

    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    if cfg.method.quantizer.enabled:  # before any data is read or trunk trained
        from capbench.eval.retrieval import import_faiss
        from capbench.models.quantizers import PQ_NEEDS

        import_faiss(PQ_NEEDS)
    ev: EvalData = load_eval_data(cfg.data, cfg.eval, Path(ctx.data_root))
    root = dataset_root(cfg.data, Path(ctx.data_root))
    data = {
        "source": cfg.data.name,
        "root": str(root),
        "reader_options": dict(cfg.data.reader_options),
        "train_splits": (cfg.data.train_split,),
    }
    dm = build_datamodule(cfg.method, data, seed=ctx.seed)
    if cfg.row.trained:
        model, checkpoint = train_quantized_embedding(
            cfg.method,
            dm,
            ctx.workdir,
            seed=ctx.seed,
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"malali2022-{cfg.row.name or 'row'}"),
        )
    else:
        model, checkpoint = untrained_model(cfg.method, dm, ctx.workdir, ctx.seed)
    model = model.cpu().eval()
    img = model.embed_image_dataset(eval_images(cfg.method, ev.images))
    txt = model.embed_captions(ev.captions, dm.tokenizer)
    measure = cfg.model.measure
    metrics = score_embeddings(ev, img, txt, cfg.eval, measure=measure)
    dim = cfg.model.embed_dim
    extra: dict[str, Any] = {
        "measure": measure,
        "margin": float(model.margin),
        "bytes_per_item": bytes_per_item(dim),
        **model.provenance,
    }
    if model.quantizer is not None:
        with torch.no_grad():
            img_db, txt_db = model.reconstruct(img), model.reconstruct(txt)
        metrics.update(
            score_embeddings(
                ev,
                img,
                txt,
                cfg.eval,
                measure=measure,
                img_db=img_db,
                txt_db=txt_db,
                suffix="_pq",
            )
        )
        q = cfg.quantizer
        extra["bytes_per_item_codes"] = bytes_per_item(dim, q.subspaces, q.codewords)
        if measure == "l2":
            k = min(max(cfg.eval.ks), len(ev.captions))
            with torch.no_grad():
                extra["faiss_pq"] = faiss_agreement(model, img, txt, k)
    return RowResult(
        metrics=metrics,
        n_scored=len(ev.images) + len(ev.captions),
        checkpoint=str(checkpoint),
        dataset=ev.dataset,
        extra=extra,
    )
