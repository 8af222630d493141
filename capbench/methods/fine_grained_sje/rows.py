"""Row targets of Reed et al. 2016 (``benchmarks/reed2016``): Tables 1-3.

``run_row(config, ctx)`` reads the typed row (``config.row_config``) and dispatches on
``row.kind``:

* ``trained``          the encoder trained with DS-SJE (``train.symmetric: true``) or DA-SJE
* ``untrained``        the same encoder at its initialisation (trained must beat it)
* ``shuffled_labels``  trained on captions of a permuted class (must fall to chance)

Every row is scored by ``capbench.eval.protocols.zero_shot`` on the unseen test classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capbench.eval.protocols.zero_shot import (
    chance_top1,
    score_zero_shot,
    sentences_per_class_curve,
)
from capbench.methods.fine_grained_sje.config import FineGrainedSJERow, row_config
from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext, RowResult
from capbench.methods.training import resolve_pretrain_data


def _data_root(cfg: FineGrainedSJERow, ctx: RowContext) -> Path:
    root = Path(cfg.data.root)
    return root if root.is_absolute() else Path(ctx.data_root) / root


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every reed2016 row."""
    from capbench.data.fingerprint import dataset_fingerprint
    from capbench.methods.fine_grained_sje.train import (
        build_datamodule,
        read_records,
        train_fine_grained_sje,
        untrained_module,
        zero_shot_side,
    )

    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    root = _data_root(cfg, ctx)
    data = {
        "source": cfg.data.name,
        "root": str(root),
        "train_splits": cfg.data.train_splits,
        "reader_options": cfg.data.reader_options,
    }
    kind = cfg.row.kind
    dm = build_datamodule(cfg.method, data, seed=ctx.seed, shuffle_labels=kind == "shuffled_labels")
    if kind == "untrained":
        model, checkpoint = untrained_module(cfg.method, dm, ctx.workdir, seed=ctx.seed)
    else:
        model, checkpoint = train_fine_grained_sje(
            cfg.method,
            dm,
            ctx.workdir,
            seed=ctx.seed,
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"reed2016-{cfg.row.name or kind}"),
        )
    test_records = read_records(cfg.data.name, root, [cfg.data.test_split], cfg.data.reader_options)
    test = zero_shot_side(cfg.method, dm, cfg.data.name, root, test_records, seed=ctx.seed)
    model = model.cpu().eval()
    captions = model.embed_captions(test.caption_tokens, cfg.train.embed_batch_size)
    metrics = score_zero_shot(
        test.image_features, test.image_labels, captions, test.caption_labels, cfg.eval.ap_k
    )
    curves: dict[str, dict[str, list[float]]] = {}
    if cfg.eval.sentences_per_class and dm.level != "class":
        curves["top1_vs_test_sentences"] = sentences_per_class_curve(
            test.image_features,
            test.image_labels,
            captions,
            test.caption_labels,
            cfg.eval.sentences_per_class,
            cfg.eval.draws,
            cfg.eval.seed,
        )
    return RowResult(
        metrics=metrics,
        n_scored=len(test.image_labels),
        curves=curves,
        checkpoint=str(checkpoint),
        dataset={
            "name": cfg.data.name,
            "root": str(root),
            "fingerprint": dataset_fingerprint(root),
        },
        extra={
            "encoder": cfg.model.encoder,
            "loss": "DS-SJE" if cfg.train.symmetric else "DA-SJE",
            "chance_top1": chance_top1(test.image_labels),
            "test_classes": len(set(test.image_labels)),
            "train_images": len(dm.items),
            "image_source": cfg.model.image_source,
        },
    )
