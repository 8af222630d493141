"""Row targets of Sariyildiz et al. 2020 (``benchmarks/sariyildiz2020``): one row per model.

``run_row(config, ctx)`` reads the typed row (``config.row_config``) and dispatches on
``row.kind``:

* ``trained``      pretrain the trunk with ``train.mode`` (tfm | att-fc | tp_label | tp_postag)
* ``random_init``  the same trunk, untrained (the floor every pretrained model must beat)
* ``imagenet``     the trunk from a local ImageNet checkpoint (``model.backbone_weights``)

Every row is scored by the same transfer protocol, VOC07 linear SVMs on the average-pooled
features of each layer in ``voc07.layers`` (``capbench.eval.protocols.voc07_classification``),
as ``map_<layer>`` (mAP, percent), and with ``coco_svm.enabled`` by COCO multi-label SVMs
(``coco_map_<layer>``, ``capbench.eval.protocols.coco_classification``), and with
``in1k.enabled`` by an ImageNet-1k softmax probe (``in1k_top1``, ``in1k_top5``). ICMLM rows add the masked-token accuracy on held-out
captions (``mlm_acc``, beside ``mlm_acc_most_frequent``) and, for ``att-fc``, how often
the attention peaks on the masked object (``mlm_attention_peak``, beside ``mlm_attention_chance``
and the position prior ``mlm_attention_position_prior``, the bar a grounded attention must pass).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from capbench.methods.icmlm.config import ICMLM_MODES, IcmlmRow, row_config
from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext, RowResult


def _data_root(cfg: IcmlmRow, ctx: RowContext) -> Path:
    root = Path(cfg.data.root)
    root = root if root.is_absolute() else Path(ctx.data_root) / root
    if not root.is_dir():
        raise FileNotFoundError(
            f"{cfg.data.name} not found at {root}: see data_cards/coco.md (COCO 2014 images, "
            "captions, instances and Karpathy's dataset_coco.json), or run the scenes profile"
        )
    return root


def _model(cfg: IcmlmRow, ctx: RowContext, dm: Any) -> tuple[Any, str | None, dict[str, Any]]:
    """(model, checkpoint, extra) for the row's kind."""
    from capbench.methods.icmlm.train import build_module, train_icmlm

    kind = cfg.row.kind
    if kind == "trained":
        model, ckpt = train_icmlm(
            cfg.method,
            dm,
            ctx.workdir,
            seed=ctx.seed,
            accelerator=ctx.accelerator,
            devices=ctx.devices,
            progress=ctx.progress,
            loggers=make_loggers(ctx, f"sariyildiz2020-{cfg.row.name or cfg.train.mode}"),
        )
        return model, str(ckpt), {"mode": cfg.train.mode}
    import lightning as L

    L.seed_everything(ctx.seed, workers=True, verbose=False)
    method = cfg.method
    if kind == "random_init":
        method = dataclasses.replace(
            method, model=dataclasses.replace(method.model, backbone_weights=None)
        )
    elif not cfg.model.backbone_weights:
        raise ValueError(
            "the imagenet row needs model.backbone_weights: a local ImageNet checkpoint of "
            f"{cfg.model.backbone} (--set model.backbone_weights=PATH)"
        )
    return build_module(method, dm, ctx.seed).eval(), None, {}


def _svm_probe(
    cfg: IcmlmRow, ctx: RowContext, model: Any, data: Any, prefix: str
) -> tuple[dict[str, float], dict]:
    """Per-class linear SVMs on the average-pooled features of each ``voc07.layers`` layer:
    ``<prefix>_<layer>`` (mAP, percent) and the chosen C / per-class AP. In a DDP run the
    ranks share the feature extraction (each image once) and rank 0 alone fits the SVMs (their
    cross-validation already uses every core), handing every rank the result."""
    from capbench.data.datamodule import record_images
    from capbench.eval.extract import computed_on_rank_zero
    from capbench.methods.icmlm.features import layer_features

    v = cfg.voc07
    side = cfg.model.image_size
    feats, unreadable = {}, {}
    for split, recs in (("train", data.train), ("test", data.test)):
        feats[split], unreadable[split] = layer_features(
            model.trunk, record_images(recs, side, True), v.layers, v.batch_size, model.device
        )
    metrics, details = computed_on_rank_zero(lambda: _fit_svms(cfg, ctx, data, feats, prefix))
    # unreadable images keep a row of zeros (the split stays whole); how many, per split
    return metrics, {**details, "unreadable": unreadable}


def _fit_svms(
    cfg: IcmlmRow, ctx: RowContext, data: Any, feats: dict, prefix: str
) -> tuple[dict[str, float], dict]:
    """The SVM fits of :func:`_svm_probe` on the features every rank holds."""
    from capbench.eval.protocols.voc07_classification import EvalConfig, score_features

    v = cfg.voc07
    metrics, details = {}, {}
    for layer in v.layers:
        result = score_features(
            feats["train"][layer],
            feats["test"][layer],
            data,
            EvalConfig(c_grid=tuple(v.c_grid), n_folds=v.n_folds, metric=v.metric, seed=ctx.seed),
            # classes on every core: faster from a few thousand train images (scenes, paper); on
            # ci's tiny split the workers' start-up (~3 s, once per process) costs more
            n_jobs=-1,
        )
        metrics[f"{prefix}_{layer}"] = float(result["mAP"])
        details[layer] = {"chosen_c": result["chosen_c"], "ap_per_class": result["ap_per_class"]}
    return metrics, details


def _voc07(cfg: IcmlmRow, ctx: RowContext, model: Any) -> tuple[dict[str, float], int, dict]:
    """VOC07 mAP per layer (percent) with the SVM details."""
    from capbench.eval.protocols.voc07_classification import DataConfig, load_voc_data

    voc = load_voc_data(DataConfig(root=cfg.voc07.root), Path(ctx.data_root))
    metrics, details = _svm_probe(cfg, ctx, model, voc, "map")
    return metrics, len(voc.test), {"voc07": details, "voc07_dataset": voc.dataset}


def _coco_svm(cfg: IcmlmRow, ctx: RowContext, model: Any) -> tuple[dict[str, float], dict]:
    """COCO multi-label mAP per layer (percent), the supplementary's probe."""
    from capbench.eval.protocols.coco_classification import DataConfig, load_coco_labels

    c = cfg.coco_svm
    coco = load_coco_labels(
        DataConfig(
            root=c.root,
            train_split=c.train_split,
            test_split=c.test_split,
            reader_options=dict(c.reader_options),
            max_train_images=c.max_train_images,
            max_test_images=c.max_test_images,
        ),
        Path(ctx.data_root),
    )
    metrics, details = _svm_probe(cfg, ctx, model, coco, "coco_map")
    info = {**coco.dataset, "classes": len(coco.classes), "test_images": len(coco.test)}
    return metrics, {"coco_svm": details, "coco_svm_dataset": info}


def _first_per_class(records: list, n: int) -> list:
    """The first ``n`` records of each label, in reading order."""
    kept: list = []
    count: dict[Any, int] = {}
    for r in records:
        if count.get(r.label, 0) < n:
            count[r.label] = count.get(r.label, 0) + 1
            kept.append(r)
    return kept


def _in1k(cfg: IcmlmRow, ctx: RowContext, model: Any) -> tuple[dict[str, float], dict]:
    """ImageNet-1k top-1 of a softmax probe on one layer's pooled features (train -> val)."""
    from capbench.data import read
    from capbench.data.datamodule import record_images
    from capbench.eval.extract import computed_on_rank_zero
    from capbench.eval.linear_probe import softmax_probe
    from capbench.eval.protocols._common import resolve_dataset_root
    from capbench.methods.icmlm.features import layer_features

    c = cfg.in1k
    root = resolve_dataset_root(
        c.root, Path(ctx.data_root), "ImageNet-1k", "data_cards/imagenet.md"
    )
    train, val = read("imagenet", root, "train"), read("imagenet", root, "val")
    if c.max_train_per_class:
        train = _first_per_class(train, c.max_train_per_class)
    side, bs = cfg.model.image_size, cfg.voc07.batch_size
    feats, unreadable = [], []
    for recs in (train, val):
        found, bad = layer_features(
            model.trunk, record_images(recs, side, True), [c.layer], bs, model.device
        )
        feats.append(found[c.layer])
        unreadable.append(bad)
    n_classes = len(train[0].meta["classes"])
    # the ranks shared the features; the probe is trained once, on rank 0
    result = computed_on_rank_zero(lambda: softmax_probe(
        feats[0], [r.label for r in train], feats[1], [r.label for r in val], n_classes,
        epochs=c.epochs, lr=c.lr, weight_decay=c.weight_decay, batch_size=c.batch_size,
        seed=int(ctx.seed), device=str(model.device),
    ))  # fmt: skip
    extra = {"in1k": {**result, "layer": c.layer, "train_images": len(train), "classes": n_classes,
                      "unreadable": {"train": unreadable[0], "val": unreadable[1]}}}  # fmt: skip
    return {"in1k_top1": result["top1"], "in1k_top5": result["top5"]}, extra


def _heldout(cfg: IcmlmRow, ctx: RowContext, model: Any, dm: Any) -> tuple[dict, dict]:
    """Masked-token accuracy (and att-fc's attention peaks, figures) on held-out captions; in
    a DDP run scored and drawn by rank 0 alone, every rank getting the result."""
    from capbench.eval.extract import computed_on_rank_zero

    return computed_on_rank_zero(lambda: _scored_heldout(cfg, ctx, model, dm))


def _scored_heldout(cfg: IcmlmRow, ctx: RowContext, model: Any, dm: Any) -> tuple[dict, dict]:
    """:func:`_heldout` in one process."""
    from capbench.methods.icmlm.evaluate import (
        accuracy_by_object_count,
        accuracy_by_word_kind,
        attention_object_share,
        attention_peak_weight,
        evaluate_heldout,
        heldout_metrics,
        most_frequent_concept,
    )
    from capbench.methods.icmlm.figures import (
        draw_attention,
        draw_peak_cells,
        figure_dir,
        peak_cell_shares,
    )

    held = evaluate_heldout(
        model, dm, cfg.data.heldout_split, cfg.data.heldout_images, cfg.row.attention_figures
    )
    metrics = heldout_metrics(held, most_frequent_concept(dm))
    extra: dict[str, Any] = {
        "heldout_scored": len(held.correct),
        "attention_scored": len(held.peak_cells),
        "heldout_by_word_kind": accuracy_by_word_kind(held),
        "heldout_by_object_count": accuracy_by_object_count(held),
    }
    name = cfg.row.name or cfg.train.mode
    out = figure_dir(Path(ctx.workdir), ctx.profile)
    figures: list[str] = []
    if len(held.peak_cells) >= 2 and held.grid is not None:
        peaks, covered = peak_cell_shares(held.peak_cells, held.inside, held.grid)
        extra["attention_peak_share_by_cell"] = peaks.round(4).tolist()
        extra["object_share_by_cell"] = covered.round(4).tolist()
        extra["attention_peak_weight"] = {
            k: round(v, 4) for k, v in attention_peak_weight(held).items()
        }
        extra["attention_object_share"] = {
            k: round(v, 2) for k, v in attention_object_share(held).items()
        }
        if cfg.row.attention_figures:
            path = out / f"{name}_peak_cells.png"
            n = len(held.peak_cells)
            figures.append(str(draw_peak_cells(peaks, covered, n, metrics, path)))
    # "figures": the leaderboard page shows them under the row's table (bench.report)
    figures += [
        str(draw_attention(ex, cfg.model.image_size, out / f"{name}_{ex['image_id']}.png"))
        for ex in held.examples
    ]
    if figures:
        extra["figures"] = figures
    return metrics, extra


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every sariyildiz2020 row."""

    from capbench.data.fingerprint import dataset_fingerprint
    from capbench.methods.icmlm.train import build_datamodule

    cfg = row_config(config)
    root = _data_root(cfg, ctx)
    data = {"source": cfg.data.name, "root": str(root), "reader_options": cfg.data.reader_options}
    dm = build_datamodule(cfg.method, data, seed=ctx.seed)
    model, checkpoint, extra = _model(cfg, ctx, dm)
    model = model.to(ctx.eval_device()).eval()
    metrics, n_scored, voc_extra = _voc07(cfg, ctx, model)
    extra.update(voc_extra)
    if cfg.coco_svm.enabled:
        coco_metrics, coco_extra = _coco_svm(cfg, ctx, model)
        metrics.update(coco_metrics)
        extra.update(coco_extra)
    if cfg.in1k.enabled:
        in1k_metrics, in1k_extra = _in1k(cfg, ctx, model)
        metrics.update(in1k_metrics)
        extra.update(in1k_extra)
    if cfg.row.kind == "trained" and cfg.train.mode in ICMLM_MODES:
        held_metrics, held_extra = _heldout(cfg, ctx, model, dm)
        metrics.update(held_metrics)
        extra.update(held_extra)
    extra.update(model.provenance)
    extra["concepts"] = len(model.concept_words or [])
    return RowResult(
        metrics=metrics,
        n_scored=n_scored,
        checkpoint=checkpoint,
        dataset={
            "name": cfg.data.name,
            "root": str(root),
            "fingerprint": dataset_fingerprint(root),
        },
        extra=extra,
    )
