"""Training the fusion: the DataModule a config and a feature set ask for, and a resumable fit
with Keras-style early stopping on the validation pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from capbench.methods.caption_fusion.config import CaptionFusionConfig
from capbench.methods.caption_fusion.data import FusionPairs
from capbench.methods.caption_fusion.module import VAL_LOSS, CaptionFusion
from capbench.methods.training import (
    fit_or_load,
)


def build_datamodule(
    cfg: CaptionFusionConfig, data: Mapping[str, Any], seed: int = 0
) -> FusionPairs:
    """Pairs of one fold of a graded benchmark. ``data``: ``source`` (``graded_retrieval``),
    ``root``, ``features`` (a ``.npz`` of image id -> vector written by
    :func:`capbench.methods.caption_fusion.features.save_features`, or ``"thumbnail"``), and
    optionally ``fold`` (0-based, default 0) and ``folds`` (default 5); or ``records`` and a
    ready ``features`` mapping."""
    from capbench.data import read
    from capbench.eval.protocols.graded_retrieval import query_folds
    from capbench.methods.caption_fusion.features import resolve_features

    records = data.get("records")
    if records is None:
        source = data.get("source", "graded_retrieval")
        records = list(read(source, Path(data["root"])))
    features = resolve_features(data["features"], records)
    queries = [r.image_id for r in records if r.split == "query"]
    test = set(query_folds(len(queries), int(data.get("folds", 5)))[int(data.get("fold", 0))])
    train_queries = [q for i, q in enumerate(queries) if i not in test]
    return FusionPairs(records, features, train_queries, cfg, seed)


def train_caption_fusion(
    cfg: CaptionFusionConfig,
    datamodule: FusionPairs,
    workdir: str | Path,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    loggers: list[Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[CaptionFusion, Path]:
    """Fit (checkpoints at epoch ends in ``workdir/checkpoints``, resumed exactly) until
    ``train.max_epochs`` or early stopping; the final weights are the last epoch's (Keras'
    EarlyStopping restores nothing). A finished run is loaded, not retrained."""
    stop: list[L.Callback] = []
    if len(datamodule.val_pairs["grade"]):
        stop.append(
            EarlyStopping(
                monitor=VAL_LOSS,
                patience=cfg.train.patience,
                mode="min",
                check_on_train_epoch_end=True,
            )
        )
    return fit_or_load(
        lambda: CaptionFusion(model=cfg.model, train=cfg.train, pairs=cfg.pairs, seed=seed),
        load_trained_fusion,
        datamodule,
        workdir,
        seed,
        loggers or False,
        max_epochs=cfg.train.max_epochs,
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        log_every_n_steps=1,
        callbacks=[*stop, *callbacks],
    )


def load_trained_fusion(path: str | Path) -> CaptionFusion:
    """A trained fusion model in eval mode from its checkpoint."""
    return CaptionFusion.load_from_checkpoint(str(path), map_location="cpu").eval()
