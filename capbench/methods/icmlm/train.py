"""Training and loading ICMLM models: the DataModule a config asks for, a resumable fit, the
untrained (random-init) trunk, and checkpoints reloaded without the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from capbench.methods.config import config_dict
from capbench.methods.icmlm.config import IcmlmConfig
from capbench.methods.icmlm.data import IcmlmDataModule
from capbench.methods.icmlm.module import Icmlm
from capbench.methods.training import (
    fit_or_load,
    load_trained,
)


def build_datamodule(cfg: IcmlmConfig, data: Mapping[str, Any], seed: int = 0) -> IcmlmDataModule:
    """``IcmlmDataModule`` over ``data`` (``source`` and ``root``, or ``records``; COCO with
    Karpathy splits and its instances unless ``reader_options`` says otherwise)."""
    m, t = cfg.model, cfg.train
    kwargs: dict[str, Any] = {
        "source": "coco",
        "root": ".",
        "reader_options": {"splits": "karpathy", "instances": True},
        "longest_side": m.image_size,
        "pad_to_square": True,
        "augment": t.augment,
        "shift": t.shift,
        "batch_size": t.batch_size,
        "num_workers": t.num_workers,
        "val_split": None,
        "test_split": None,
        "seed": seed,
        **dict(data),
    }
    return IcmlmDataModule(
        # plain data: the DataModule's hparams go into checkpoints loaded with weights_only
        concept_options=config_dict(cfg.concepts),
        text_encoder=m.text_encoder,
        text_max_len=m.text_max_len,
        **kwargs,
    )


def build_module(cfg: IcmlmConfig, dm: IcmlmDataModule | None, seed: int = 0) -> Icmlm:
    """An untrained model; with ``dm`` its heads are sized from the data's concepts."""
    return Icmlm(
        model=cfg.model,
        concepts=cfg.concepts,
        train=cfg.train,
        concept_words=dm.concepts if dm is not None else None,
        categories=dm.categories if dm is not None else None,
        seed=seed,
    )


def load_icmlm(path: str | Path, map_location: str = "cpu") -> Icmlm:
    """A trained model from its checkpoint (the trunk file is not re-read)."""
    return load_trained(Icmlm, path, map_location)


def train_icmlm(
    cfg: IcmlmConfig,
    datamodule: IcmlmDataModule,
    workdir: str | Path,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    loggers: list[Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[Icmlm, Path]:
    """Fit (checkpoints at epoch ends in ``workdir/checkpoints``, resumed from ``last.ckpt``) and
    return the model in eval mode with its last checkpoint; a finished run is only loaded."""
    return fit_or_load(
        lambda: build_module(cfg, datamodule, seed),
        load_icmlm,
        datamodule,
        workdir,
        seed,
        loggers,
        max_epochs=cfg.train.max_epochs + cfg.train.head_epochs,
        precision=cfg.train.precision,
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        log_every_n_steps=1,
        callbacks=callbacks,
    )
