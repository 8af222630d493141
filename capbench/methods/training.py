"""What every method's training shares: trunk weights from a local file, a Trainer that
checkpoints and resumes exactly, and checkpoints written without a Trainer.

Exact resume. A run killed at any point (SIGKILL included) and started again must end with the
weights of an uninterrupted run. Three things make that hold:

* checkpoints are written only at the end of an epoch (``last.ckpt``), and training is
  epoch-based (``max_epochs``), so Lightning restores them as finished epochs; a mid-epoch
  restart would replay an epoch from its first batch while counting it as partly done;
* a method's data order is a function of the global step and its seed (e.g. the mining round
  ``global_step // remine_every``), never of how many times a loader was built;
* :class:`RngState` stores the torch, numpy and Python generators in the checkpoint, so
  anything that draws from them (augmentation, dropout, worker seeds) draws the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import numpy as np
import torch

from capbench.atomic import atomic_path, atomic_write_text

C = TypeVar("C")
M = TypeVar("M", bound=L.LightningModule)

SCENES_PRETRAIN = "scenes-pretrain"
LAST = "last.ckpt"
FINISHED = "finished.json"  # beside last.ckpt once a fit has run to its end


def resolve_pretrain_data(cfg: C, data_root: str | Path, seed: int | None = None) -> C:
    """``cfg`` (a frozen dataclass with a ``pretrain`` mapping) with ``pretrain.data``, the
    labelled images the scenes backbone is pretrained on, made absolute under ``data_root``
    like every other dataset root of a row, and ``pretrain.seed`` set to the row's ``seed``
    unless the config sets one.

    Why the row seed: the scenes trunk is part of what a seed varies. On another CPU the
    pretraining takes another path through float rounding, like another seed, so golden
    tolerances measured over seeds must include the trunk's spread; with one trunk for every
    seed they would not (seed 0 keeps the trunk it always had).
    """
    pretrain = dict(cfg.pretrain)  # type: ignore[attr-defined]
    data = pretrain.get("data")
    if data and not Path(data).is_absolute():
        pretrain["data"] = str(Path(data_root) / data)
    if seed is not None:
        pretrain.setdefault("seed", int(seed))
    if pretrain == cfg.pretrain:  # type: ignore[attr-defined]
        return cfg
    return dataclasses.replace(cfg, pretrain=pretrain)  # type: ignore[type-var]


def trunk_identity(
    backbone: str, backbone_weights: str | None, pretrain: Mapping[str, Any] | None = None
) -> str:
    """What a trained model's cache key must know of the trunk it started from, found without
    training it: the scenes trunk's cache file name (its options, data fingerprint and version),
    a local checkpoint's content hash (a new file at the same path is another trunk), or random
    init. Config values alone are not enough: a retrained trunk or a swapped file would
    otherwise find the models of the old one."""
    if backbone_weights == SCENES_PRETRAIN:
        from capbench.methods.backbone_pretrain import scenes_backbone_file

        opts = dict(pretrain or {})
        opts.setdefault("arch", backbone)
        return f"{SCENES_PRETRAIN}:{scenes_backbone_file(**opts).stem}"
    if backbone_weights:
        from capbench.data.fingerprint import file_sha256

        path = Path(backbone_weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.backbone_weights: {backbone_weights} is not a file")
        return f"sha256:{file_sha256(path)[0]}"
    return "random-init"


def resolve_backbone_weights(
    backbone: str,
    backbone_weights: str | None,
    allow_random_init: bool,
    pretrain: Mapping[str, Any] | None = None,
) -> str | None:
    """The local weights file of a trunk: a path, the cached scenes pretraining
    (``"scenes-pretrain"``, trained on first use with ``pretrain`` options), or None, which is
    refused unless ``allow_random_init`` (the paper profiles must not silently start random)."""
    if backbone_weights == SCENES_PRETRAIN:
        from capbench.methods.backbone_pretrain import pretrain_backbone

        opts = dict(pretrain or {})
        opts.setdefault("arch", backbone)
        return str(pretrain_backbone(**opts))
    if backbone_weights:
        if not Path(backbone_weights).is_file():
            raise FileNotFoundError(f"model.backbone_weights: {backbone_weights} is not a file")
        return str(backbone_weights)
    if not allow_random_init:
        raise WeightsNotGiven()
    return None


class WeightsNotGiven(ValueError):
    """No weights file for a trunk that the paper initialises from ImageNet: a user's setting
    to make, so the message says how with each command, and ``capbench fit`` prints it alone."""

    def __init__(self) -> None:
        super().__init__(
            "model.backbone_weights is not set: give a local ImageNet checkpoint "
            "(capbench reproduce: --backbone-weights PATH; capbench fit: "
            "--model.model.backbone_weights PATH) or allow a random-init trunk "
            "(--allow-random-init; --model.model.allow_random_init true)"
        )


@contextmanager
def keep_random_streams() -> Iterator[None]:
    """Run a block that reseeds or draws from the global generators (torch, numpy, Python;
    CUDA when initialised) and put them back as they were after it."""
    rng = RngState()
    saved = rng.state_dict()
    try:
        yield
    finally:
        rng.load_state_dict(saved)


class RngState(L.Callback):
    """Saves and restores the global random generators with each checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        # tensors, ints and tuples only, so checkpoints stay loadable with weights_only=True
        _, keys, pos, has_gauss, cached = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def last_checkpoint(workdir: str | Path) -> Path:
    """Where :func:`fit_resumable` keeps the checkpoint it resumes from."""
    return Path(workdir) / "checkpoints" / LAST


def finished_checkpoint(workdir: str | Path) -> Path | None:
    """``last.ckpt`` of a fit in ``workdir`` that ran to its end (so a rerun only loads it and
    needs no data), else None (never started, or interrupted: :func:`fit_resumable` resumes)."""
    last = last_checkpoint(workdir)
    return last if last.is_file() and (last.parent / FINISHED).is_file() else None


def load_trained(
    cls: type[L.LightningModule],
    path: str | Path,
    map_location: str = "cpu",
    expected: str | None = None,
) -> Any:
    """A module of class ``cls`` from its checkpoint, without re-reading the trunk's weights
    file (the checkpoint holds the weights): ``model.backbone_weights`` is cleared on load.

    With ``expected`` (what the caller wants, in words: "a captioner (mopuri2017)"), a file a
    user named is checked first: one that is not such a checkpoint is a ``CheckpointKindError``
    saying what it holds instead."""
    from capbench.methods.checkpoint_kind import check_kind, read_checkpoint

    ckpt = read_checkpoint(path)
    if expected is not None:
        check_kind(path, ckpt, cls, expected)
    model_cfg = dict(ckpt["hyper_parameters"]["model"])
    model_cfg.update(backbone_weights=None, allow_random_init=True)
    return cls.load_from_checkpoint(
        str(path), map_location=map_location, model=model_cfg, weights_only=False
    )


def fit_resumable(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    workdir: str | Path,
    max_epochs: int,
    precision: str = "32-true",
    loggers: Sequence[Any] | bool | None = None,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    log_every_n_steps: int = 50,
    callbacks: Sequence[L.Callback] = (),
    **trainer_kwargs: Any,
) -> Path:
    """Fit with checkpoints at every epoch end in ``workdir/checkpoints`` and resume from
    ``last.ckpt`` there; returns that checkpoint, holding the final state, and marks the run
    finished (:func:`finished_checkpoint`). Under DDP every rank leaves with rank 0's state
    (:func:`capbench.eval.extract.share_rank_zero_state`), so whatever the ranks evaluate
    next is the checkpointed model."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from capbench.file_lock import TRAIN_LOCK, job_lock
    from capbench.lightning_noise import quiet_lightning
    from capbench.methods.checkpoint_io import AtomicCheckpointIO

    quiet_lightning()
    # one process trains in a workdir at a time; a process that waited resumes from what the
    # other one left, which is the finished fit
    with job_lock(Path(workdir) / TRAIN_LOCK, f"training in {workdir}"):
        last = last_checkpoint(workdir)
        trainer = L.Trainer(
            default_root_dir=str(workdir),
            accelerator=accelerator,
            devices=devices,
            max_epochs=max_epochs,
            precision=precision,  # type: ignore[arg-type]
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=list(loggers) if isinstance(loggers, Sequence) else loggers,
            callbacks=[
                # one file, last.ckpt, rewritten at each epoch end (Lightning's save_last would
                # write a second full copy of every epoch's checkpoint beside it)
                ModelCheckpoint(
                    dirpath=str(last.parent),
                    filename=last.stem,
                    save_top_k=1,
                    enable_version_counter=False,
                    every_n_epochs=1,
                ),
                RngState(),
                *callbacks,
            ],
            plugins=[AtomicCheckpointIO(), *trainer_kwargs.pop("plugins", ())],
            enable_progress_bar=progress,
            enable_model_summary=False,
            log_every_n_steps=log_every_n_steps,
            **trainer_kwargs,
        )
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.is_file() else None)
        from capbench.eval.extract import share_rank_zero_state

        # after a DDP fit every rank evaluates: all of them with the state the checkpoint holds
        # (a one-device fit inside a DDP job, rank 0's alone, has nothing to share and no peer
        # to wait on)
        if trainer.world_size > 1:
            share_rank_zero_state(module)
        # the full state, for a rerun to resume from: the last epoch end's save already holds it
        # unless the fit stopped between epoch ends (max_steps); every rank takes the same branch
        # (the save is collective)
        saved_at = getattr(trainer.checkpoint_callback, "_last_global_step_saved", None)
        if saved_at != trainer.global_step:
            trainer.save_checkpoint(str(last), weights_only=False)
        atomic_write_text(last.parent / FINISHED, json.dumps({"max_epochs": max_epochs}))
        if trainer.is_global_zero:
            _drop_other_checkpoints(last)
        return last


def _drop_other_checkpoints(last: Path) -> None:
    """Remove every other checkpoint file beside a finished fit's ``last.ckpt``: the temporary
    file of a save that a kill interrupted, and the per-epoch copies that fits before 2026-12-04
    kept. Each is as large as the model and its optimiser state."""
    for path in last.parent.glob("*.ckpt"):
        if path.name != last.name:
            path.unlink(missing_ok=True)


def fit_or_load(
    build: Callable[[], M],
    load: Callable[[Path], M],
    datamodule: L.LightningDataModule,
    workdir: str | Path,
    seed: int = 0,
    loggers: Sequence[Any] | bool | None = None,
    **fit_kwargs: Any,
) -> tuple[M, Path]:
    """Every method's fit: a finished run in ``workdir`` is only loaded (``load``); otherwise
    the module is built from ``seed`` and fitted with :func:`fit_resumable` (CSV logs in the
    workdir unless ``loggers`` says otherwise). Returns the model in eval mode and its last
    checkpoint."""
    finished = finished_checkpoint(workdir)
    if finished is not None:
        return load(finished).eval(), finished
    L.seed_everything(seed, workers=True, verbose=False)
    model = build()
    if loggers is None:
        loggers = L.pytorch.loggers.CSVLogger(str(workdir), name="logs")
    last = fit_resumable(model, datamodule, workdir, loggers=loggers, **fit_kwargs)
    return model.eval(), last


def save_untrained(build: Callable[[], M], workdir: str | Path, seed: int = 0) -> tuple[M, Path]:
    """A method's module at its initialisation from ``seed`` (the floor a trained row must
    beat), saved as ``workdir/untrained.ckpt``; in eval mode."""
    L.seed_everything(seed, workers=True, verbose=False)
    model = build()
    path = save_plain_checkpoint(model, Path(workdir) / "untrained.ckpt")
    return model.eval(), path


def save_plain_checkpoint(module: L.LightningModule, path: str | Path) -> Path:
    """A Lightning-loadable checkpoint written without a Trainer (an untrained baseline)."""
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": L.__version__,
    }
    module.on_save_checkpoint(ckpt)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(path), suffix=".ckpt") as tmp:
        torch.save(ckpt, tmp)
    return Path(path)
