"""Training SJE models: the data a config asks for (fixed image features, caption tokens,
encoder tables), a resumable fit, and the test-side embeddings the zero-shot protocol scores."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from capbench.data.records import CaptionedImage
from capbench.eval.protocols.zero_shot import DataConfig
from capbench.eval.unreadable import require_every_image, unreadable_rows
from capbench.methods.fine_grained_sje.config import FineGrainedSJEConfig
from capbench.methods.fine_grained_sje.data import (
    SJEFeatureData,
    build_tokenizer,
    caption_tokens,
    encode_captions,
    encoder_level,
)
from capbench.methods.fine_grained_sje.features import backbone_features, t7_features
from capbench.methods.fine_grained_sje.module import FineGrainedSJE
from capbench.methods.training import (
    fit_or_load,
    load_trained,
    resolve_backbone_weights,
    save_untrained,
)

log = logging.getLogger(__name__)


def read_records(
    source: str, root: str | Path, splits: Sequence[str], options: Mapping[str, Any] | None = None
) -> list[CaptionedImage]:
    """The records of ``splits`` (Reed's class splits), in reader order."""
    from capbench.data import read

    out: list[CaptionedImage] = []
    for split in splits:
        out.extend(read(source, root, split, **dict(options or {})))
    return out


def image_features(
    cfg: FineGrainedSJEConfig,
    source: str,
    root: str | Path,
    records: Sequence[CaptionedImage],
    train: bool,
    seed: int = 0,
) -> Tensor:
    """``(N, V, D)`` fixed features of ``records``: all views when ``train``, else one."""
    m = cfg.model
    if m.image_source == "t7":
        return t7_features(Path(root), source, records, train, m.views)
    if m.image_source != "backbone":
        raise ValueError(f"model.image_source must be 't7' or 'backbone', got {m.image_source!r}")
    weights = resolve_backbone_weights(
        m.backbone or "", m.backbone_weights, m.allow_random_init, cfg.pretrain
    )
    return backbone_features(m, weights, records, train, cfg.train.extract_batch_size, seed)


def _class_attributes(source: str, root: str | Path) -> Tensor:
    """CUB's ``attributes/class_attribute_labels_continuous.txt`` (the attributes encoder's
    table; Flowers has none, as the paper's Table 2)."""
    from capbench.data.sources.cub import read_class_attributes

    if source != "cub":
        raise ValueError(f"the attributes encoder needs CUB's class attributes, not {source!r}")
    return torch.as_tensor(read_class_attributes(Path(root)), dtype=torch.float32)


def _word_vectors(
    cfg: FineGrainedSJEConfig, vocab: Any, captions: Sequence[str], seed: int
) -> Tensor:
    from capbench.models.text_encoders.word2vec import (
        load_keyed_vectors,
        train_keyed_vectors,
        vocab_vectors,
    )

    if cfg.model.word2vec:
        kv = load_keyed_vectors(cfg.model.word2vec)
    else:
        kv = train_keyed_vectors(captions, seed=seed)
    return vocab_vectors(kv, vocab)[0]


def shuffle_class_captions(records: Sequence[CaptionedImage], seed: int) -> list[CaptionedImage]:
    """The records with each class's captions swapped for another class's (a fixed random
    permutation of classes; each image takes the captions of an image of its new class): the
    chance-level control, where text and image classes no longer agree."""
    from dataclasses import replace

    g = torch.Generator().manual_seed(seed)
    classes = sorted({int(r.label) for r in records})  # type: ignore[arg-type]
    perm = torch.randperm(len(classes), generator=g).tolist()
    target = {c: classes[p] for c, p in zip(classes, perm, strict=True)}
    by_class: dict[int, list[CaptionedImage]] = {}
    for r in records:
        by_class.setdefault(int(r.label), []).append(r)  # type: ignore[arg-type]
    out = []
    for i, r in enumerate(records):
        donors = by_class[target[int(r.label)]]  # type: ignore[arg-type]
        out.append(replace(r, captions=list(donors[i % len(donors)].captions)))
    return out


def build_datamodule(
    cfg: FineGrainedSJEConfig,
    data: Mapping[str, Any],
    seed: int = 0,
    shuffle_labels: bool = False,
) -> SJEFeatureData:
    """The training data of a config: ``data`` holds ``source`` and ``root`` (and optionally
    ``train_splits``, ``reader_options``, or ready ``records``)."""
    source = str(data.get("source", DataConfig.name))
    root = data.get("root", ".")
    records = data.get("records")
    if records is None:
        splits = tuple(data.get("train_splits", DataConfig().train_splits))
        records = read_records(source, root, splits, data.get("reader_options"))
    if not records:
        raise ValueError(f"{root}: no training records for {source!r}")
    if shuffle_labels:
        records = shuffle_class_captions(records, seed)
    features = image_features(cfg, source, root, records, train=True, seed=seed)
    bad = set(unreadable_rows(features).tolist())
    if bad:  # a training image that cannot be read: left out (its file was reported)
        log.warning("%d unreadable training image(s) left out", len(bad))
        keep = [i for i in range(len(records)) if i not in bad]
        records, features = [records[i] for i in keep], features[keep]
    m, t = cfg.model, cfg.train
    level = encoder_level(m.encoder)
    captions = [c for r in records for c in r.captions]
    tokenizer = build_tokenizer(m.encoder, captions, m.word_min_count) if level != "class" else None
    attributes = _class_attributes(source, root) if m.encoder == "attributes" else None
    vocab = len(attributes) if attributes is not None else None
    vectors = None
    if m.encoder == "word2vec_avg":
        vectors = _word_vectors(cfg, tokenizer, captions, seed)
    return SJEFeatureData(
        features=features,
        tokens=caption_tokens(records, tokenizer, level, t.captions_per_image),
        labels=torch.tensor([int(r.label) for r in records], dtype=torch.long),  # type: ignore[arg-type]
        tokenizer=tokenizer,
        level=level,
        batch_size=t.batch_size,
        seed=seed,
        num_workers=t.num_workers,
        vocab_size=vocab,
        class_attributes=attributes,
        word_vectors=vectors,
    )


def build_module(cfg: FineGrainedSJEConfig, dm: SJEFeatureData, seed: int) -> FineGrainedSJE:
    return FineGrainedSJE(
        model=cfg.model,
        train=cfg.train,
        pretrain=cfg.pretrain,
        vocab_size=dm.vocab_size,
        feature_dim=dm.feature_dim,
        seed=seed,
        class_attributes=dm.class_attributes,
        word_vectors=dm.word_vectors,
    )


def untrained_module(
    cfg: FineGrainedSJEConfig, dm: SJEFeatureData, workdir: str | Path, seed: int = 0
) -> tuple[FineGrainedSJE, Path]:
    """The encoder at its initialisation (the trained-beats-untrained control)."""
    return save_untrained(lambda: build_module(cfg, dm, seed), workdir, seed)


def train_fine_grained_sje(
    cfg: FineGrainedSJEConfig,
    datamodule: SJEFeatureData,
    workdir: str | Path,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    loggers: list[Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[FineGrainedSJE, Path]:
    """Fit (checkpoints in ``workdir/checkpoints``, resumed from ``last.ckpt``) and return the
    model in eval mode with its last checkpoint. A finished run only reloads its weights."""
    return fit_or_load(
        lambda: build_module(cfg, datamodule, seed),
        lambda path: load_trained(FineGrainedSJE, path),
        datamodule,
        workdir,
        seed,
        loggers,
        max_epochs=cfg.train.max_epochs,
        precision=cfg.train.precision,
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        log_every_n_steps=10,
        callbacks=callbacks,
        gradient_clip_val=cfg.train.grad_clip,
        use_distributed_sampler=False,  # ClassBalancedBatchSampler splits classes over ranks
    )


@dataclass
class ZeroShotSide:
    """The zero-shot test set as the protocol scores it."""

    image_features: Tensor  # (N, D), one view per test image
    image_labels: list[int]
    caption_tokens: Tensor  # (M, L) every test caption (class ids for attributes)
    caption_labels: list[int]


def zero_shot_side(
    cfg: FineGrainedSJEConfig,
    dm: SJEFeatureData,
    source: str,
    root: str | Path,
    records: Sequence[CaptionedImage],
    seed: int = 0,
) -> ZeroShotSide:
    """Test images' single-view features and all their captions, tokenized as in training. In a
    DDP run (evaluation after the fit) rank 0 extracts the features, or reads them from the
    feature cache, and hands them to every rank: each test image once in the job."""
    from capbench.eval.extract import computed_on_rank_zero

    feats = computed_on_rank_zero(
        lambda: image_features(cfg, source, root, records, train=False, seed=seed)
    )[:, 0]
    require_every_image(feats, records, "zero-shot scoring")
    labels = [int(r.label) for r in records]  # type: ignore[arg-type]
    if dm.level == "class":  # one "caption" per class: its attribute vector
        classes = sorted(set(labels))
        tokens = torch.tensor(classes, dtype=torch.long).view(-1, 1)
        return ZeroShotSide(feats, labels, tokens, classes)
    captions = [(c, y) for r, y in zip(records, labels, strict=True) for c in r.captions]
    tokens = encode_captions(dm.tokenizer, dm.level, [c for c, _ in captions])  # type: ignore[arg-type]
    return ZeroShotSide(feats, labels, tokens, [y for _, y in captions])
