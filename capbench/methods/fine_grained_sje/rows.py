"""Row targets of Reed et al. 2016 (``benchmarks/reed2016``): Tables 1-3.

``run_row(config, ctx)`` reads the typed row (``config.row_config``) and dispatches on
``row.kind``:

* ``trained``          the encoder trained with DS-SJE (``train.symmetric: true``) or DA-SJE
* ``untrained``        the same encoder at its initialisation (trained must beat it)
* ``shuffled_labels``  trained on captions of a permuted class (must fall to chance)
* ``train_sentences``  Figure 4 (left): one model per count of training captions per image

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

_DATASETS = {"cub": "CUB-200-2011", "flowers": "Oxford Flowers-102"}


def _data_root(cfg: FineGrainedSJERow, ctx: RowContext) -> Path:
    """The dataset folder; a missing one names the data card (as every paper's rows do), not
    the first file the reader would have opened in it."""
    from capbench.eval.protocols._common import resolve_dataset_root

    name = cfg.data.name
    what = _DATASETS.get(name, name)
    return resolve_dataset_root(cfg.data.root, Path(ctx.data_root), what, f"data_cards/{name}.md")


def _fit(cfg: FineGrainedSJERow, ctx: RowContext, data: dict[str, Any], workdir: Path) -> Any:
    """The row's data and model (trained, or at initialisation for ``untrained``)."""
    from capbench.methods.fine_grained_sje.train import (
        build_datamodule,
        train_fine_grained_sje,
        untrained_module,
    )

    kind = cfg.row.kind
    dm = build_datamodule(cfg.method, data, seed=ctx.seed, shuffle_labels=kind == "shuffled_labels")
    if kind == "untrained":
        model, checkpoint = untrained_module(cfg.method, dm, workdir, seed=ctx.seed)
    else:
        model, checkpoint = train_fine_grained_sje(
            cfg.method,
            dm,
            workdir,
            seed=ctx.seed,
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"reed2016-{cfg.row.name or kind}"),
        )
    return dm, model.to(ctx.eval_device()).eval(), checkpoint


def _train_sentences(
    cfg: FineGrainedSJERow, ctx: RowContext, data: dict[str, Any], root: Path
) -> RowResult:
    """Figure 4 (left): one model per count of training captions per image, each scored on the
    unseen classes; the row's metrics are those of the largest count."""
    from dataclasses import replace

    xs, ys, last = [], [], None
    for n in sorted(set(cfg.row.train_sentences)):
        run = replace(cfg, train=replace(cfg.train, captions_per_image=int(n)))
        last = _score(run, ctx, data, root, Path(ctx.workdir) / f"captions{n}", curves=False)
        xs.append(float(n))
        ys.append(last.metrics["top1"])
    assert last is not None  # RowConfig refuses an empty list
    last.curves = {"top1_vs_train_sentences": {"x": xs, "y": ys}}
    last.extra["train_sentences"] = xs
    return last


def _score(
    cfg: FineGrainedSJERow,
    ctx: RowContext,
    data: dict[str, Any],
    root: Path,
    workdir: Path,
    curves: bool = True,
) -> RowResult:
    """Train (or load) the row's model and score it on the unseen classes. In a DDP run the
    ranks share the test captions' embedding (each caption once in the job) and rank 0 alone
    scores them (the sentences-per-class curve draws many subsets), handing every rank the
    result."""
    from capbench.data.fingerprint import dataset_fingerprint
    from capbench.eval.extract import computed_on_rank_zero, embed_in_order
    from capbench.methods.fine_grained_sje.train import read_records, zero_shot_side

    dm, model, checkpoint = _fit(cfg, ctx, data, workdir)
    test_records = read_records(cfg.data.name, root, [cfg.data.test_split], cfg.data.reader_options)
    test = zero_shot_side(cfg.method, dm, cfg.data.name, root, test_records, seed=ctx.seed)
    batch = cfg.train.embed_batch_size
    captions = embed_in_order(
        lambda idx: model.embed_captions(test.caption_tokens[list(idx)], batch),
        len(test.caption_tokens),
        batch,
        desc="test captions",
        progress=ctx.progress,
    )
    with_curve = bool(curves and cfg.eval.sentences_per_class and dm.level != "class")
    metrics, out = computed_on_rank_zero(lambda: _zero_shot_scores(cfg, test, captions, with_curve))
    return RowResult(
        metrics=metrics,
        n_scored=len(test.image_labels),
        curves=out,
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


def _zero_shot_scores(
    cfg: FineGrainedSJERow, test: Any, captions: Any, with_curve: bool
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]]]:
    """Top-1 / AP@k of the test images against the classes' embedded captions, and with
    ``with_curve`` top-1 against the number of test sentences per class."""
    metrics = score_zero_shot(
        test.image_features, test.image_labels, captions, test.caption_labels, cfg.eval.ap_k
    )
    out: dict[str, dict[str, list[float]]] = {}
    if with_curve:
        out["top1_vs_test_sentences"] = sentences_per_class_curve(
            test.image_features,
            test.image_labels,
            captions,
            test.caption_labels,
            cfg.eval.sentences_per_class,
            cfg.eval.draws,
            cfg.eval.seed,
        )
    return metrics, out


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every reed2016 row."""
    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    root = _data_root(cfg, ctx)
    data = {
        "source": cfg.data.name,
        "root": str(root),
        "train_splits": cfg.data.train_splits,
        "reader_options": cfg.data.reader_options,
    }
    if cfg.row.kind == "train_sentences":
        return _train_sentences(cfg, ctx, data, root)
    return _score(cfg, ctx, data, root, Path(ctx.workdir))
