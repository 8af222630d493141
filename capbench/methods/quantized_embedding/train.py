"""Training and loading QuantizedEmbedding models: the DataModule a config asks for, a
resumable fit (epoch-based, checkpoints at epoch ends, RNG state saved), the untrained towers,
and test-split embeddings for the protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from capbench.data.datamodule import TRAIN, CaptionDataModule, record_images
from capbench.data.records import CaptionedImage
from capbench.methods.quantized_embedding.config import QuantizedEmbeddingConfig
from capbench.methods.quantized_embedding.module import QuantizedEmbedding
from capbench.methods.training import (
    fit_or_load,
    load_trained,
    save_untrained,
)


def build_datamodule(
    cfg: QuantizedEmbeddingConfig, data: Mapping[str, Any], seed: int = 0
) -> CaptionDataModule:
    """``CaptionDataModule(view="pairs")``: one random caption per training image and epoch,
    images at the config's size; ``data`` holds the rest (``source``, ``root``,
    ``reader_options``, or ``records``)."""
    m, t = cfg.model, cfg.train
    kwargs: dict[str, Any] = {
        "view": "pairs",
        "longest_side": m.image_size,
        "pad_to_square": True,
        "augment": t.augment,
        "tokenizer": "word",
        "max_len": m.max_len,
        "batch_size": t.batch_size,
        "num_workers": t.num_workers,
        "val_split": None,
        "test_split": None,
        "seed": seed,
        # a frozen trunk's features are computed once at fit start: batches need no images
        "load_train_images": m.finetune_trunk or t.augment,
        **dict(data),
    }
    kwargs.setdefault("source", "coco")
    kwargs.setdefault("root", ".")
    return CaptionDataModule(**kwargs)


def build_module(
    cfg: QuantizedEmbeddingConfig, datamodule: CaptionDataModule, seed: int
) -> QuantizedEmbedding:
    """A fresh model sized for the DataModule's vocabulary and training images."""
    return QuantizedEmbedding(
        model=cfg.model,
        loss=cfg.loss,
        quantizer=cfg.quantizer,
        train=cfg.train,
        pretrain=cfg.pretrain,
        text_vocab_size=datamodule.vocab_size,
        n_concepts=len(datamodule.records(TRAIN)),
        seed=seed,
    )


def load_quantized_embedding(path: str | Path, map_location: str = "cpu") -> QuantizedEmbedding:
    """A trained (or untrained baseline) model from its checkpoint; the backbone file is not
    re-read (the checkpoint holds the weights)."""
    return load_trained(QuantizedEmbedding, path, map_location)


def untrained_model(
    cfg: QuantizedEmbeddingConfig, datamodule: CaptionDataModule, workdir: str | Path, seed: int
) -> tuple[QuantizedEmbedding, Path]:
    """The towers as initialised (the floor a trained row must beat), saved as a checkpoint."""
    return save_untrained(lambda: build_module(cfg, datamodule, seed), workdir, seed)


def train_quantized_embedding(
    cfg: QuantizedEmbeddingConfig,
    datamodule: CaptionDataModule,
    workdir: str | Path,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    loggers: list[Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[QuantizedEmbedding, Path]:
    """Fit (checkpoints in ``workdir/checkpoints``, resumed from ``last.ckpt``) and return the
    model in eval mode with its last checkpoint. A finished run is loaded without training
    again."""
    return fit_or_load(
        lambda: build_module(cfg, datamodule, seed),
        load_quantized_embedding,
        datamodule,
        workdir,
        seed,
        loggers,
        max_epochs=cfg.train.max_epochs,
        precision=cfg.train.precision,
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        log_every_n_steps=1,
        callbacks=callbacks,
        gradient_clip_val=cfg.train.grad_clip,
    )


def eval_images(
    cfg: QuantizedEmbeddingConfig, records: Sequence[CaptionedImage]
) -> torch.utils.data.Dataset:
    """The ``images`` view of ``records`` at the model's size, no augmentation, in order."""
    return record_images(records, cfg.model.image_size, pad_to_square=True)
