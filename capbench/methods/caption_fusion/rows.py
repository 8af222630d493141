"""Row targets of Mopuri et al. 2017 (``benchmarks/mopuri2017``): one representation per row,
scored by nDCG@K on the graded benchmark (``capbench.eval.protocols.graded_retrieval``).

* ``random``  chance level: uniformly random rankings (``row.repeats`` draws)
* ``cnn``     the untuned trunk the captioners start from, globally average-pooled
* ``fic``     Show-and-Tell's 512-d image embedding (the LSTM's input), L2-normalised
* ``bord``    mean LSTM encoding of the region captioner's top-5 regions, L2-normalised
* ``concat``  [BoRD ; FIC]
* ``fused``   the siamese fusion of [BoRD ; FIC], trained per fold (5-fold over the queries)
* ``captioner`` a captioner's own quality on held-out images (BLEU-4, CIDEr) beside a caption
  of a random training image: the check that it learned to describe images at all

The captioners train once per config (a folder under the cache, shared by the rows); feature
files are cached beside them per benchmark fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.cache_entry import json_object, read_cached
from capbench.data.records import CaptionedImage
from capbench.eval.protocols.graded_retrieval import (
    GradedData,
    load_graded_data,
    query_folds,
    random_ranking_ndcg,
    score_features,
    score_folds,
    score_similarity,
    similarity,
)
from capbench.methods.caption_fusion.config import CaptionFusionRow, row_config
from capbench.methods.caption_fusion.features import extract, load_features, save_features
from capbench.methods.config import config_dict
from capbench.methods.protocol import RowContext, RowResult
from capbench.methods.training import resolve_pretrain_data, trunk_identity


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _captioner_config(kind: str, cfg: CaptionFusionRow) -> dict[str, Any]:
    """What of a row config decides the captioner ``kind`` it trains: its section, the
    pretraining and the captioning data."""
    return {
        "kind": kind,
        "section": config_dict(getattr(cfg, kind)),
        "pretrain": cfg.pretrain,
        "captioning": config_dict(cfg.captioning),
    }


def captioner_workdir(kind: str, cfg: CaptionFusionRow, ctx: RowContext) -> Path:
    """Where a captioner trains: one folder per (kind, its section, pretraining, training data,
    seed), shared by every row that needs it. The training data enters by its content
    (``dataset_fingerprint``), not only its path: scenes data rewritten at another size in the
    same folder must not find the old captioner."""
    from capbench.data.fingerprint import dataset_fingerprint
    from capbench.paths import cache_root

    root = Path(ctx.data_root)
    data = cfg.captioning.coco if kind == "show_and_tell" else cfg.captioning.visual_genome
    section = getattr(cfg, kind)
    key = {
        **_captioner_config(kind, cfg),
        # the trunk by content (a retrained scenes trunk, a new file at the same path) and the
        # training code's version: bump "v" with a change that alters what training produces
        "trunk": trunk_identity(section.backbone, section.backbone_weights, cfg.pretrain),
        "v": 1,
        "data_root": str(root.resolve()),
        "data": dataset_fingerprint(root / data)["sha256"],
        "seed": int(ctx.seed),
    }
    if ctx.training_world_size() > 1:  # DDP: N times the batch is another captioner
        key["world_size"] = ctx.training_world_size()
    return cache_root() / "mopuri2017" / "captioners" / f"{kind}-{_digest(key)}"


def captioner_records(kind: str, cfg: CaptionFusionRow, ctx: RowContext, split: str) -> list:
    """A split of a captioner's data: COCO Karpathy captions (Show-and-Tell) or Visual Genome
    region phrases (the region captioner)."""
    from capbench.data import read

    root = Path(ctx.data_root)
    if kind == "show_and_tell":
        return list(read("coco", root / cfg.captioning.coco, split, splits="karpathy"))
    return list(read("visual_genome", root / cfg.captioning.visual_genome, split))


def captioner_train_records(kind: str, cfg: CaptionFusionRow, ctx: RowContext) -> list:
    """The training records (Karpathy train + restval, or VG train), cut to
    the captioner's own ``max_train_images``."""
    recs = captioner_records(kind, cfg, ctx, "train")
    n = getattr(cfg, kind).max_train_images
    return recs[:n] if n else recs


def trained_captioner(kind: str, cfg: CaptionFusionRow, ctx: RowContext) -> tuple[Any, Path]:
    """The captioner ``kind`` of this config, trained on first use (resumable; over
    ``ctx.devices`` with DDP), else loaded; on the device the row evaluates on."""
    from capbench.methods.caption_fusion.captioning import train_captioner

    model, checkpoint = train_captioner(
        kind,
        getattr(cfg, kind),
        captioner_train_records(kind, cfg, ctx),
        captioner_workdir(kind, cfg, ctx),
        pretrain=cfg.pretrain,
        seed=ctx.seed,
        accelerator="cpu" if ctx.accelerator == "cpu" else "auto",
        devices=ctx.devices,
        progress=ctx.progress,
    )
    return model.to(ctx.eval_device()).eval(), checkpoint


def _caption_quality(
    kind: str, cfg: CaptionFusionRow, ctx: RowContext, model: Any, checkpoint: Path
) -> dict[str, float]:
    """BLEU / CIDEr of the captioner on held-out images (Karpathy test, or VG test regions)
    against a random training caption, and its ``text_preference``, cached beside its
    checkpoint. In a DDP run rank 0 scores (or reads the cache) and hands the scores to every
    rank: the beam search runs once in the job."""
    from capbench.eval.extract import computed_on_rank_zero

    return computed_on_rank_zero(lambda: _scored_caption_quality(kind, cfg, ctx, model, checkpoint))


def _scored_caption_quality(
    kind: str, cfg: CaptionFusionRow, ctx: RowContext, model: Any, checkpoint: Path
) -> dict[str, float]:
    """:func:`_caption_quality` in one process."""
    from capbench.methods.caption_fusion.captioning import caption_quality
    from capbench.methods.caption_fusion.text_preference import text_preference

    cache = checkpoint.parent.parent / f"caption_scores{_device_tag(ctx)}.json"
    cached = read_cached(cache, lambda: json_object(cache))
    # scores cached before the likelihood test lack text_preference: scored again
    if cached is not None and "text_preference" in cached:
        return cached
    held = captioner_records(kind, cfg, ctx, "test")
    n = cfg.captioning.eval_images
    held = held[:n] if n else held
    scores = caption_quality(
        model,
        held,
        captioner_train_records(kind, cfg, ctx),
        seed=int(ctx.seed),
        meteor=cfg.captioning.meteor,
    )
    # the likelihood side of grounding, which the most probable text can hide
    scores.update(text_preference(model, held, seed=int(ctx.seed)))
    from capbench.atomic import atomic_write_text

    atomic_write_text(cache, json.dumps(scores, indent=2))
    return scores


def _device_tag(ctx: RowContext) -> str:
    """A cache name's mark of where its numbers were computed: none on the CPU, "-cuda" on a
    GPU, whose float paths differ slightly, so a GPU run neither serves nor overwrites a CPU
    run's cached scores and features (and the CPU goldens stay reproducible)."""
    device = ctx.eval_device()
    return "" if device == "cpu" else f"-{device}"


def _cnn_embed(
    cfg: CaptionFusionRow, ctx: RowContext
) -> Callable[[list[torch.Tensor]], torch.Tensor]:
    """The untuned trunk of the FIC captioner (the same starting weights, cut at the same
    stride), average-pooled."""
    from capbench.methods.training import resolve_backbone_weights
    from capbench.models.captioners.trunk import dense_trunk

    c = cfg.show_and_tell
    weights = resolve_backbone_weights(
        c.backbone, c.backbone_weights, c.allow_random_init, cfg.pretrain
    )
    trunk, _ = dense_trunk(c.backbone, c.stride, weights)
    device = ctx.eval_device()
    trunk.to(device).eval()
    return lambda images: torch.nn.functional.normalize(
        trunk(torch.stack(images).to(device)).mean(dim=(2, 3)), dim=1
    )


def _features(
    kind: str, cfg: CaptionFusionRow, ctx: RowContext, images: Sequence[CaptionedImage], tag: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(N, D)`` features of ``images`` for one of cnn / fic / bord, cached per benchmark.

    In a DDP run every rank calls this: rank 0 decides whether the cache serves (so all ranks
    take the same path), the ranks share the extraction (each image once in the job) and rank
    0 writes the cache."""
    from capbench.data.region_phrases import pad_images
    from capbench.eval.extract import computed_on_rank_zero, is_rank_zero

    batch = cfg.captioning.embed_batch_size
    info: dict[str, Any] = {}
    desc = f"{kind} features"
    if kind == "cnn":
        embed = _cnn_embed(cfg, ctx)
        size = cfg.show_and_tell.image_size
        return extract(images, embed, size, True, batch, desc, ctx.progress), info
    captioner = "show_and_tell" if kind == "fic" else "region_captioner"
    model, checkpoint = trained_captioner(captioner, cfg, ctx)
    info[f"{captioner}_checkpoint"] = str(checkpoint)
    info[f"{captioner}_scores"] = _caption_quality(captioner, cfg, ctx, model, checkpoint)
    cache = checkpoint.parent.parent / f"{kind}-{tag}{_device_tag(ctx)}.npz"
    ids = [r.image_id for r in images]
    stored = computed_on_rank_zero(lambda: _cached_features(cache, ids))
    if stored is not None:
        return stored, info
    device = model.device  # trained_captioner put it on the row's evaluation device
    if kind == "fic":

        def fic(x: list[torch.Tensor]) -> torch.Tensor:
            return model.fic(torch.stack(x).to(device))

        feats = extract(images, fic, cfg.show_and_tell.image_size, True, batch, desc, ctx.progress)
    else:

        def bord(x: list[torch.Tensor]) -> torch.Tensor:
            padded, sizes = pad_images(x)
            return model.bord(padded.to(device), sizes)

        size = cfg.region_captioner.image_size
        feats = extract(images, bord, size, False, batch, desc, ctx.progress)
    if is_rank_zero():
        save_features(cache, ids, feats)
    return feats, info


def _cached_features(cache: Path, ids: Sequence[str]) -> np.ndarray | None:
    """The cached rows of ``ids`` in order, or None when the cache lacks any of them."""
    stored = read_cached(cache, lambda: load_features(cache))
    if stored is None or not all(i in stored for i in ids):
        return None
    return np.stack([stored[i] for i in ids])


def row_features(
    kind: str, cfg: CaptionFusionRow, ctx: RowContext, data: GradedData
) -> tuple[np.ndarray, dict[str, Any]]:
    """Features of the queries then the references (rows in that order)."""
    images = data.queries + data.references
    tag = _digest(data.dataset.get("fingerprint") or [r.image_id for r in images])
    if kind == "concat":
        bord, info = _features("bord", cfg, ctx, images, tag)
        fic, more = _features("fic", cfg, ctx, images, tag)
        return np.concatenate([bord, fic], axis=1), {**info, **more}
    return _features(kind, cfg, ctx, images, tag)


def _curves(metrics: dict[str, float], ks: Sequence[int]) -> dict[str, dict[str, list[float]]]:
    return {"ndcg": {"x": [float(k) for k in ks], "y": [metrics[f"ndcg@{k}"] for k in ks]}}


def _fused(
    cfg: CaptionFusionRow, ctx: RowContext, data: GradedData, x: np.ndarray
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train the fusion on each fold's training queries, score its test queries; mean over
    folds (the authors' protocol). One device, as the code trains it (batch 600 of ~2,000 pairs
    per fold): in a DDP run rank 0 trains and scores the folds and hands every rank the result."""
    from capbench.eval.extract import computed_on_rank_zero

    return computed_on_rank_zero(lambda: _fused_folds(cfg, ctx, data, x))


def _fused_folds(
    cfg: CaptionFusionRow, ctx: RowContext, data: GradedData, x: np.ndarray
) -> tuple[dict[str, float], dict[str, Any]]:
    """:func:`_fused` in one process."""
    from capbench.methods.caption_fusion.data import FusionPairs
    from capbench.methods.caption_fusion.train import train_caption_fusion

    if x.shape[1] != cfg.method.model.in_dim:
        raise ValueError(
            f"model.in_dim is {cfg.method.model.in_dim} but the fused features [BoRD ; FIC] are "
            f"{x.shape[1]}-d (the captioners' dim): set model.in_dim to {x.shape[1]}"
        )
    images = data.queries + data.references
    features = {r.image_id: v for r, v in zip(images, x)}
    records = [*data.queries, *data.references]
    n_q = len(data.queries)
    per_fold, info = [], []
    for f, test in enumerate(query_folds(n_q, cfg.eval.folds)):
        held = set(test.tolist())
        train_q = [q.image_id for i, q in enumerate(data.queries) if i not in held]
        dm = FusionPairs(records, features, train_q, cfg.method, seed=ctx.seed)
        model, _ = train_caption_fusion(
            cfg.method,
            dm,
            Path(ctx.workdir) / f"fold{f}",
            seed=ctx.seed,
            accelerator="cpu" if ctx.accelerator == "cpu" else "auto",
            devices=1,
            progress=ctx.progress,
        )
        model = model.cpu()
        rep = model.represent(torch.as_tensor(x, dtype=torch.float32)).numpy()
        sim = similarity(rep[:n_q], rep[n_q:])
        per_fold.append(score_similarity(sim, data, cfg.eval.ks, queries=test))
        info.append({**dm.info(), "epochs": int(model.current_epoch or 0)})
    return score_folds(per_fold), {"folds": info, "per_fold": per_fold}


CAPTION_METRICS = ("bleu4", "cider", "random_bleu4", "random_cider", "text_preference")


def _captioner_row(cfg: CaptionFusionRow, ctx: RowContext) -> RowResult:
    """BLEU-4 / CIDEr of one captioner on held-out images and of the random-caption floor."""
    kind = cfg.row.captioner
    model, checkpoint = trained_captioner(kind, cfg, ctx)
    scores = _caption_quality(kind, cfg, ctx, model, checkpoint)
    return RowResult(
        metrics={k: scores[k] for k in CAPTION_METRICS},
        n_scored=int(scores["n_images"]),
        checkpoint=str(checkpoint),
        extra={"kind": "captioner", "captioner": kind, "scores": scores},
    )


# the captioners a row kind trains on first use (cached under $CAPBENCH_CACHE, shared by rows)
_CAPTIONERS_OF = {
    "fic": ("show_and_tell",),
    "bord": ("region_captioner",),
    "concat": ("region_captioner", "show_and_tell"),
    "fused": ("region_captioner", "show_and_tell"),
}


def shared_captioners(config: dict[str, Any]) -> list[str]:
    """The method's ``shared_models``: a key per captioner this row config trains on first use
    (or reads), from the part of :func:`captioner_workdir`'s key that a row config holds
    (:func:`_captioner_config`); the data root and seed are the plan's, the trunk the run's."""
    cfg = row_config(config)
    if cfg.row.kind == "captioner":
        kinds: tuple[str, ...] = (cfg.row.captioner,)
    else:
        kinds = _CAPTIONERS_OF.get(cfg.row.kind, ())
    return [f"{k}-{_digest(_captioner_config(k, cfg))}" for k in kinds]


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """The benchmark runner's entry point for every mopuri2017 row."""
    cfg = resolve_pretrain_data(row_config(config), ctx.data_root, ctx.seed)
    if cfg.row.kind == "captioner":
        return _captioner_row(cfg, ctx)
    data = load_graded_data(cfg.data, Path(ctx.data_root))
    ks = cfg.eval.ks
    kind = cfg.row.kind
    extra: dict[str, Any] = {"kind": kind}
    if kind == "random":
        metrics = random_ranking_ndcg(data, ks, draws=cfg.row.repeats, seed=int(ctx.seed))
    else:
        x, info = row_features("concat" if kind == "fused" else kind, cfg, ctx, data)
        extra.update(info)
        extra["feature_dim"] = int(x.shape[1])
        if kind == "fused":
            metrics, more = _fused(cfg, ctx, data, x)
            extra.update(more)
        else:
            n_q = len(data.queries)
            metrics = score_features(x[:n_q], x[n_q:], data, ks)
    # a single-captioner row names that captioner's checkpoint (the suite scores it)
    captioner = {"fic": "show_and_tell", "bord": "region_captioner"}.get(kind)
    return RowResult(
        metrics=metrics,
        n_scored=len(data.queries),
        curves=_curves(metrics, ks),
        checkpoint=extra.get(f"{captioner}_checkpoint") if captioner else None,
        dataset=data.dataset,
        extra=extra,
    )
