"""Training and loading SemanticRetrieval models: the DataModule a config asks for, a resumable
fit, the untrained visual baseline, and embedding records for evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor

from capbench.data.datamodule import CaptionDataModule, record_images
from capbench.data.records import CaptionedImage
from capbench.methods.semantic_retrieval.config import SemanticRetrievalConfig, normalise_mode
from capbench.methods.semantic_retrieval.module import SemanticRetrieval
from capbench.methods.training import (
    finished_checkpoint,
    fit_resumable,
    load_trained,
    save_plain_checkpoint,
)


def build_datamodule(
    cfg: SemanticRetrievalConfig,
    data: Mapping[str, Any],
    tfidf_options: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> CaptionDataModule:
    """``CaptionDataModule(view="triplets")`` with the config's image size, relevance and
    workers; ``data`` holds the rest (``source`` and ``root``, or ``records``). ``seed`` is the
    model's (the rounds are seeded by the model; the two must agree in the logged hparams)."""
    m, t = cfg.model, cfg.train
    kwargs: dict[str, Any] = {
        "view": "triplets",
        "longest_side": m.longest_side,
        "pad_to_square": m.pad_to_square,
        "augment": False,  # the paper mentions no augmentation
        "k_relevant": t.k_relevant,
        "relevance_field": "regions",
        "tfidf_options": dict(tfidf_options or {}),
        "batch_size": t.embed_batch_size,
        "num_workers": t.num_workers,
        "val_split": None,
        "test_split": None,
        "seed": seed,
        **dict(data),
    }
    kwargs.setdefault("source", "visual_genome")
    kwargs.setdefault("root", ".")
    return CaptionDataModule(**kwargs)


def image_tensor(image: Any, longest_side: int | None, pad_to_square: bool) -> Tensor:
    """A decoded RGB image (PIL) as the model sees it, ``(3, H, W)`` (the ``model`` section's
    sizes)."""
    from capbench.data.images import build_transform

    return build_transform(longest_side=longest_side, pad_to_square=pad_to_square)(image)


def load_semantic_retrieval(path: str | Path, map_location: str = "cpu") -> SemanticRetrieval:
    """A trained (or baseline) model from its checkpoint; the backbone file is not re-read (the
    checkpoint holds the weights)."""
    return load_trained(
        SemanticRetrieval, path, map_location, "a semantic_retrieval model (gordo2017)"
    )


def build_visual_baseline(
    cfg: SemanticRetrievalConfig, datamodule: CaptionDataModule, workdir: str | Path, seed: int = 0
) -> tuple[SemanticRetrieval, Path]:
    """The "(-, V)" row: the (pre)trained trunk + R-MAC whose whitening is learned on training
    images, with no fine-tuning. Cached as ``workdir/baseline.ckpt``."""
    path = Path(workdir) / "baseline.ckpt"
    if path.is_file():
        return load_semantic_retrieval(path).eval(), path
    model = build_module(cfg, "V", None, seed)
    model.init_whitening_from(datamodule.train_images())
    save_plain_checkpoint(model, path)
    return model.eval(), path


def build_module(
    cfg: SemanticRetrievalConfig, train_mode: str, vocab_size: int | None, seed: int
) -> SemanticRetrieval:
    return SemanticRetrieval(
        model=cfg.model,
        train=cfg.train,
        mining=cfg.mining,
        pretrain=cfg.pretrain,
        train_mode=train_mode,
        tfidf_vocab_size=vocab_size if normalise_mode(train_mode) != "V" else None,
        seed=seed,
    )


def train_semantic_retrieval(
    cfg: SemanticRetrievalConfig,
    datamodule: CaptionDataModule,
    workdir: str | Path,
    train_mode: str = "V",
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    loggers: list[Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[SemanticRetrieval, Path]:
    """Fit a model (checkpoints in ``workdir/checkpoints``, resumed from ``last.ckpt``; one
    epoch per mining round) and return it in eval mode with its last checkpoint. A finished run
    is loaded without touching the data."""
    finished = finished_checkpoint(workdir)
    if finished is not None:
        return load_semantic_retrieval(finished).eval(), finished
    L.seed_everything(seed, workers=True, verbose=False)
    vocab = datamodule.relevance.vocab_size
    model = build_module(cfg, train_mode, vocab, seed)
    last = fit_resumable(
        model,
        datamodule,
        workdir,
        max_epochs=model.mining_plan().rounds,
        precision=cfg.train.precision,
        loggers=loggers or L.pytorch.loggers.CSVLogger(str(workdir), name="logs"),
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        log_every_n_steps=max(1, min(50, cfg.mining.remine_every)),
        callbacks=callbacks,
    )
    model.eval()
    return model, last


def embed_records(
    model: SemanticRetrieval,
    records: Sequence[CaptionedImage],
    progress: bool = False,
    longest_side: int | None = None,
) -> Tensor:
    """phi of ``records``' images, in order, ``(N, D)`` on the CPU (NaN rows: unreadable), in
    fp32: every row is evaluated at one precision (a bf16-trained model included). In a DDP
    run the ranks share the work, each image embedded once in the job."""
    m = model.cfg.model
    images = record_images(records, longest_side or m.longest_side, m.pad_to_square)
    return model.embed_dataset(images, progress=progress, precision="32-true", shared=True).cpu()
