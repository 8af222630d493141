"""Gordo & Larlus 2017, "Beyond instance-level image retrieval": semantic retrieval learned from
captions. A ResNet + R-MAC image embedding phi trained with hard-mined triplets whose relevance
is the tf-idf k-NN of the images' region phrases; optionally a joint text embedding theta.

Public API (used by ``semantic_retrieval_rows``, ``capbench query`` and ``capbench explain``)::

    SemanticRetrieval(backbone="timm::resnet18", backbone_weights=None, mode="V", vocab_size=None,
                      out_dim=None, levels=3, scales=(1.0, 0.7071), margin=0.1, lr=1e-5,
                      lr_after=1e-6, lr_drop_step=8000, mining=None, freeze_bn=True,
                      channels_last=False, embed_batch_size=32, num_workers=0,
                      whitening_images=500, seed=0, data=None, trainable_from=None,
                      text_lr_scale=1.0, micro_batches=1)
    model.embed_images(images) -> (B, D) L2-normalised phi      images: (B,3,H,W) or list of (3,H,W)
    model.embed_text(tfidf_rows) -> (B, D) L2-normalised theta  scipy/torch sparse or dense (B, V)
    model.embed_query(images_or_phi, text=None, alpha=1.0) -> normalize(phi + alpha * theta)
    model.conv_features(images) -> last conv map (B, C, h, w) at scale 1      (Grad-CAM conv_fn)
    model.pool_features(fmap) -> R-MAC descriptor of that one map (B, D)      (Grad-CAM head_fn)
    model.provenance -> {"backbone": ..., "backbone_init": "random" | "file:<path>"}

    train_semantic_retrieval(records_train, tfidf_train, config, workdir, seed=0, mode=None,
                             accelerator="auto", devices="auto", progress=True,
                             data=None) -> (model, checkpoint_path)
    build_visual_baseline(records_train, config, workdir, seed=0, data=None) -> (model, ckpt)
    module_kwargs(config, mode, vocab_size, seed) -> SemanticRetrieval(**kwargs) of a row config
    embed_records(model, records, config, progress=False) -> (N, D) tensor
    load_image_tensor(path, config) -> (3, H, W);  load_semantic_retrieval(path) -> model

``mode``: ``"V"`` (L_v, Eq. 1), ``"V+T"`` (L_v + L_t1 + L_t2, Eqs. 1-3, six streams) or
``"WSABIE"`` (Eq. 2 alone). Queries by image + text (V+T, V+T) sum phi(image) and theta(text) and
renormalise: the paper says the two embeddings are "combined" (Figure 5 adds and subtracts word
embeddings the same way); the database is always image-only.

Config sections read by ``train_semantic_retrieval`` (every value has the paper's default):
``model``: backbone, backbone_weights (a local file, or ``"scenes-pretrain"`` for the cached
scenes stand-in, or null with ``allow_random_init: true``), out_dim, levels, scales,
longest_side (576), pad_to_square, channels_last; ``train``: lr (1e-5), lr_after (1e-6),
lr_drop_step (8000), margin (0.1: NOT stated in the paper; the value of the authors'
earlier triplet work), max_steps (16000: the paper gives only the lr drop at 8k, not the
total), k_relevant (32), precision ("32-true" | "bf16-mixed"), freeze_bn,
whitening_images, embed_batch_size, num_workers, trainable_from (null = end to end as the paper;
``"layer4"`` freezes the earlier stages, a CPU speed knob), text_lr_scale (1: theta's learning
rate as a multiple of lr), micro_batches (1: each batch of triplets runs as this many
forward/backward passes whose gradients are accumulated before the one update; exact, since
BatchNorm is frozen and the loss is a mean over triplets; it is what fits the paper's 64
triplets at 576 px on one GPU, see ``benchmarks/gordo2017/gpu_check.py memory``; it owns the
Trainer's ``accumulate_grad_batches``); ``mining``: the fields of
``capbench.data.sampling.MiningConfig`` (N=500, 9 positives, top 100, batch 64, t=64);
``pretrain``: options of ``capbench.methods.backbone_pretrain.pretrain_backbone``.

Training in Lightning terms: one "epoch" is one mining round. With
``reload_dataloaders_every_n_epochs=1`` the Trainer calls ``train_dataloader`` at every epoch
start; it mines with the current model (eval mode, no grad) and returns exactly ``t`` batches of
triplets, so a round's checkpoint boundary is also a clean resume point. Mining ranks triplets
by the visual loss L_v for V and V+T, and by Eq. 2 (image query, text candidates) for WSABIE.
The PCA-whitening is fitted on the training images' regional descriptors at fit start (and for
the visual baseline), as R-MAC does before fine-tuning. BatchNorm statistics stay frozen
(``freeze_bn``), the usual practice when fine-tuning retrieval trunks with small batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from capbench.atomic import atomic_path
from capbench.data.records import CaptionedImage
from capbench.data.sampling import MiningConfig, sample_pool, select_hard_triplets, triplet_batches
from capbench.losses import gordo_text_losses, gordo_visual_loss, wsabie_loss
from capbench.methods.semantic_retrieval_data import (
    RecordImages,
    TrainingData,
    TripletImages,
    build_training_data,
    collate,
    image_transform,
    load_image_tensor,
)
from capbench.models.backbones import create_backbone
from capbench.models.rmac import RMAC
from capbench.models.text_projection import TextProjection, csr_to_torch
from capbench.timing import synchronized_clock

log = logging.getLogger(__name__)

MODES = ("V", "V+T", "WSABIE")
SCENES_PRETRAIN = "scenes-pretrain"

__all__ = [
    "SemanticRetrieval",
    "build_visual_baseline",
    "embed_records",
    "load_image_tensor",
    "load_semantic_retrieval",
    "module_kwargs",
    "train_semantic_retrieval",
]


def _normalise_mode(mode: str) -> str:
    m = str(mode).upper().replace(" ", "")
    if m not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return m


def freeze_trunk_before(trunk: nn.Module, prefix: str) -> int:
    """Freeze the trunk's parameters that come before the first one named ``prefix...``
    (e.g. ``"layer4"``): a CPU-profile speed knob (no backward through the early stages); the
    paper fine-tunes everything. Returns how many tensors were frozen."""
    names = [n for n, _ in trunk.named_parameters()]
    if not any(n.startswith(prefix) for n in names):
        raise ValueError(f"trainable_from={prefix!r} names no trunk parameter (e.g. {names[-1]!r})")
    frozen = 0
    for name, param in trunk.named_parameters():
        if name.startswith(prefix):
            break
        param.requires_grad_(False)
        frozen += 1
    return frozen


class SemanticRetrieval(L.LightningModule):
    """phi = R-MAC(ResNet(image)); theta = normalize(W^T tfidf) for V+T and WSABIE."""

    def __init__(
        self,
        backbone: str = "timm::resnet18",
        backbone_weights: str | None = None,
        mode: str = "V",
        vocab_size: int | None = None,
        out_dim: int | None = None,
        levels: int = 3,
        scales: Sequence[float] = (1.0, 1 / math.sqrt(2)),
        margin: float = 0.1,
        lr: float = 1e-5,
        lr_after: float = 1e-6,
        lr_drop_step: int = 8000,
        mining: dict[str, Any] | None = None,
        freeze_bn: bool = True,
        channels_last: bool = False,
        embed_batch_size: int = 32,
        num_workers: int = 0,
        whitening_images: int = 500,
        seed: int = 0,
        data: dict[str, Any] | None = None,
        trainable_from: str | None = None,
        text_lr_scale: float = 1.0,
        micro_batches: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.mode = _normalise_mode(mode)
        self.trunk, channels = create_backbone(
            backbone, backbone_weights, channels_last=channels_last
        )
        self.rmac = RMAC(channels, out_dim, levels=levels, scales=tuple(scales))
        if trainable_from:
            freeze_trunk_before(self.trunk, trainable_from)
        self.text: TextProjection | None = None
        if self.mode != "V" and vocab_size:
            self.text = TextProjection(int(vocab_size), self.rmac.out_dim)
        elif self.mode != "V" and not data:
            raise ValueError(f"mode {self.mode} needs vocab_size (the tf-idf vocabulary)")
        self.mining_cfg = MiningConfig(**{"margin": margin, **(mining or {})})
        if micro_batches < 1 or self.mining_cfg.batch_size % micro_batches:
            raise ValueError(
                f"train.micro_batches={micro_batches} must divide the batch of "
                f"{self.mining_cfg.batch_size} triplets (mining.batch_size)"
            )
        self.register_buffer("whitening_ready", torch.zeros((), dtype=torch.bool))
        self.provenance: dict[str, Any] = {
            "backbone": backbone,
            "backbone_init": f"file:{backbone_weights}" if backbone_weights else "random",
        }
        self.data: TrainingData | None = None
        self.last_mining: dict[str, float] = {}

    # ------------------------------------------------------------------ embeddings
    @property
    def out_dim(self) -> int:
        return self.rmac.out_dim

    def _prep(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def conv_features(self, images: Tensor) -> Tensor:
        """Last conv map at scale 1 (Grad-CAM backpropagates to it)."""
        return self.trunk(self._prep(images))

    def pool_features(self, fmap: Tensor) -> Tensor:
        """R-MAC descriptor of a single conv map (one scale): Grad-CAM's head."""
        return self.rmac.from_conv(fmap)

    def regional_descriptors(self, images: Tensor) -> Tensor:
        """Per-region L2-normalised max-pools at every scale, ``(B, R, C)`` (whitening input)."""
        return self.rmac.multiscale_regions(self.trunk, self._prep(images))

    def embed_images(self, images: Tensor | Sequence[Tensor]) -> Tensor:
        """phi: ``(B, D)`` L2-normalised; a list of differently sized images is embedded one by one."""
        if isinstance(images, Tensor) and images.dim() == 4:
            return self.rmac(self.trunk, self._prep(images))
        return torch.cat([self.rmac(self.trunk, self._prep(img.unsqueeze(0))) for img in images])

    forward = embed_images

    def embed_text(self, tfidf: Tensor | sp.spmatrix | np.ndarray) -> Tensor:
        """theta: ``(B, D)`` L2-normalised text embeddings of tf-idf rows."""
        if self.text is None:
            raise RuntimeError("this model was trained without text (mode V): no theta")
        if isinstance(tfidf, np.ndarray):
            tfidf = torch.from_numpy(tfidf)
        if isinstance(tfidf, Tensor):
            tfidf = tfidf.to(self.device)
        return self.text(tfidf)

    def embed_query(
        self,
        images: Tensor | np.ndarray,
        text: Tensor | sp.spmatrix | np.ndarray | None = None,
        alpha: float = 1.0,
    ) -> Tensor:
        """(V+T) query: ``normalize(phi + alpha * theta)``. ``images`` are images ``(B, 3, H, W)``
        or already phi ``(B, D)``; ``text`` tf-idf rows ``(B, V)`` or already theta ``(B, D)``."""
        phi = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
        phi = self.embed_images(phi) if phi.dim() == 4 else phi.to(self.device).float()
        if text is None:
            return F.normalize(phi, dim=-1)
        if sp.issparse(text) or (isinstance(text, Tensor) and text.is_sparse):
            theta = self.embed_text(text)
        else:
            t = torch.as_tensor(text).to(self.device).float()
            is_tfidf = self.text is not None and t.shape[-1] == self.text.vocab_size
            theta = self.embed_text(t) if is_tfidf else t
        return F.normalize(phi + alpha * theta.to(phi.dtype), dim=-1)

    @torch.no_grad()
    def embed_dataset(
        self, dataset: Dataset, progress: bool = False, desc: str = "embedding"
    ) -> Tensor:
        """phi of every item of an image dataset (dicts with ``"image"``), in order, eval mode."""
        was_training = self.training
        self.eval()
        loader = DataLoader(
            dataset,
            batch_size=int(self.hparams.embed_batch_size),
            num_workers=int(self.hparams.num_workers),
            collate_fn=collate,
        )
        if progress:
            from tqdm.auto import tqdm

            loader = tqdm(loader, desc=desc, unit="batch", leave=False)
        out = []
        for batch in loader:
            with self._autocast():
                out.append(self.embed_images(batch["image"]).float())
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, self.out_dim, device=self.device)

    def _autocast(self) -> Any:
        bf16 = self.trainer_precision().startswith("bf16") and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)

    def trainer_precision(self) -> str:
        try:
            return str(self.trainer.precision)
        except RuntimeError:
            return "32-true"

    # ------------------------------------------------------------------ whitening
    @torch.no_grad()
    def init_whitening_from(self, images: Dataset, progress: bool = False) -> None:
        """PCA-whitening learned on the regional descriptors of up to ``whitening_images``
        random images (seeded), as R-MAC does before any fine-tuning."""
        n = len(images)  # type: ignore[arg-type]
        g = torch.Generator().manual_seed(int(self.hparams.seed))
        pick = torch.randperm(n, generator=g)[: int(self.hparams.whitening_images)].tolist()
        loader = DataLoader(
            Subset(images, pick),
            batch_size=int(self.hparams.embed_batch_size),
            num_workers=int(self.hparams.num_workers),
            collate_fn=collate,
        )
        was_training = self.training
        self.eval()
        feats = []
        c = self.rmac.whiten.in_features
        for batch in loader:
            imgs = batch["image"]
            with self._autocast():
                if isinstance(imgs, Tensor):
                    feats.append(self.regional_descriptors(imgs).reshape(-1, c).float().cpu())
                else:  # differently sized images: one at a time
                    feats.extend(
                        self.regional_descriptors(im[None]).reshape(-1, c).float().cpu()
                        for im in imgs
                    )
        self.rmac.init_whitening(torch.cat(feats))
        self.whitening_ready.fill_(True)
        self.train(was_training)

    # ------------------------------------------------------------------ training
    def attach_training_data(self, data: TrainingData) -> None:
        """Images + tf-idf + relevant sets of the training split (not saved in checkpoints)."""
        if self.text is not None and data.tfidf.shape[1] != self.text.vocab_size:
            raise ValueError(
                f"tf-idf has {data.tfidf.shape[1]} words, the model {self.text.vocab_size}"
            )
        self.data = data

    def setup(self, stage: str) -> None:
        """LightningCLI path: build the training data from ``data`` (a config dict:
        ``{"name": reader, "root": path, "split": "train", "reader_options": {}, "model": {...},
        "train": {"k_relevant": 32}}``) when none was attached."""
        if stage == "fit" and self._trainer is not None:
            # one epoch = one mining round, whoever built the Trainer (LightningCLI included)
            self.trainer.reload_dataloaders_every_n_epochs = 1
            # a batch of triplets = ``micro_batches`` loader batches, one optimizer step
            self.trainer.accumulate_grad_batches = int(self.hparams.micro_batches)
        if stage != "fit" or self.data is not None or not self.hparams.data:
            return
        from capbench.data import read
        from capbench.data.tfidf import cached_tfidf

        cfg = dict(self.hparams.data)
        records = read(
            cfg.get("name", "visual_genome"),
            cfg["root"],
            cfg.get("split", "train"),
            **(cfg.get("reader_options") or {}),
        )
        _, X = cached_tfidf(records, records, field="regions")
        data = build_training_data(records, X, cfg, progress=True)
        if self.mode != "V" and self.text is None:  # vocabulary known only now; saved for reloads
            self.text = TextProjection(data.tfidf.shape[1], self.rmac.out_dim).to(self.device)
            self.hparams.vocab_size = data.tfidf.shape[1]
        self.attach_training_data(data)

    def _require_data(self) -> TrainingData:
        if self.data is None:
            raise RuntimeError("call attach_training_data(...) before fitting SemanticRetrieval")
        return self.data

    def on_fit_start(self) -> None:
        if not bool(self.whitening_ready):
            self.init_whitening_from(self._require_data().images)

    def train(self, mode: bool = True) -> SemanticRetrieval:
        super().train(mode)
        if mode and self.hparams.freeze_bn:  # BN keeps its (pretrained) statistics
            for m in self.trunk.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    @torch.no_grad()
    def mine(self, generator: torch.Generator, progress: bool = False) -> Tensor:
        """One mining round with the current model: ``(t, batch, 3)`` triplet indices."""
        data = self._require_data()
        cfg = self.mining_cfg
        start = synchronized_clock(self.device)
        pool = sample_pool(data.relevant, cfg, generator)
        feats = self.embed_dataset(
            Subset(data.images, pool.pool.tolist()), progress, desc="mining pool"
        )
        embedded = synchronized_clock(self.device)
        cands = None
        if self.mode == "WSABIE":
            cands = self.embed_text(data.tfidf[pool.pool.numpy()]).float().to(feats.device)
        triplets, losses = select_hard_triplets(feats, pool, data.relevant, cfg, cands)
        selected = synchronized_clock(self.device)
        self.last_mining = {
            "pool": float(pool.pool.numel()),
            "candidates": float(triplets.shape[0]),
            "candidate_loss": float(losses.mean()) if losses.numel() else 0.0,
            "active_fraction": float((losses > 0).float().mean()) if losses.numel() else 0.0,
            "embed_seconds": embedded - start,
            "select_seconds": selected - embedded,
        }
        return triplet_batches(triplets, cfg, generator)

    def train_dataloader(self) -> DataLoader:
        data = self._require_data()
        epoch = self.current_epoch if self._trainer is not None else 0
        g = torch.Generator().manual_seed(int(self.hparams.seed) * 1_000_003 + epoch)
        batches = self.mine(g)
        triplets = batches.reshape(-1, 3)
        return DataLoader(
            TripletImages(data.images, triplets),
            batch_size=self.mining_cfg.batch_size // int(self.hparams.micro_batches),
            shuffle=False,  # already a random draw; keeps the round's batches as mined
            num_workers=int(self.hparams.num_workers),
            collate_fn=collate,
            drop_last=False,
        )

    def _theta_of(self, idx: Tensor) -> Tensor:
        rows = self._require_data().tfidf[idx.cpu().numpy()]
        return self.embed_text(csr_to_torch(rows, device=self.device))

    def triplet_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The mode's losses for a batch of triplets (images and, for text, indices)."""
        q, p, n = batch["q_image"], batch["p_image"], batch["n_image"]
        m = float(self.hparams.margin)
        idx = batch["triplet"]
        if self.mode == "WSABIE":
            phi_q = self.embed_images(q)
            return {
                "loss": wsabie_loss(phi_q, self._theta_of(idx[:, 1]), self._theta_of(idx[:, 2]), m)
            }
        if isinstance(q, Tensor):
            phi = self.embed_images(torch.cat([q, p, n]))
            phi_q, phi_p, phi_n = phi.chunk(3)
        else:
            phi_q, phi_p, phi_n = self.embed_images(q), self.embed_images(p), self.embed_images(n)
        out = {"l_v": gordo_visual_loss(phi_q, phi_p, phi_n, m)}
        if self.mode == "V+T":
            theta = self._theta_of(idx.T.reshape(-1))  # q..., p..., n...
            theta_q, theta_p, theta_n = theta.chunk(3)
            out["l_t1"], out["l_t2"] = gordo_text_losses(
                phi_q, phi_p, phi_n, theta_q, theta_p, theta_n, m
            )
        out["loss"] = sum(out.values())  # type: ignore[assignment]
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self.triplet_losses(batch)
        bs = int(batch["triplet"].shape[0])
        for k, v in losses.items():
            self.log(f"train/{k}", v, prog_bar=k == "loss", batch_size=bs)
        if batch_idx == 0:
            for k, v in self.last_mining.items():
                self.log(f"mining/{k}", v, batch_size=bs)
        return losses["loss"]

    def configure_optimizers(self) -> Any:
        lr, after, drop = (
            float(self.hparams.lr),
            float(self.hparams.lr_after),
            int(self.hparams.lr_drop_step),
        )
        # theta's W starts from random while the trunk starts pretrained: ``text_lr_scale``
        # gives it a larger step (1 = one learning rate for all, as the paper states nothing else).
        trunk, text = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (text if name.startswith("text.") else trunk).append(p)
        groups = [{"params": trunk}]
        if text:
            groups.append({"params": text, "lr": lr * float(self.hparams.text_lr_scale)})
        opt = torch.optim.Adam(groups, lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 1.0 if step < drop else after / lr
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["capbench_provenance"] = dict(self.provenance)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.provenance = dict(checkpoint.get("capbench_provenance", self.provenance))


# ---------------------------------------------------------------------- functional API


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(config.get(name) or {})


def resolve_backbone_weights(config: dict[str, Any]) -> str | None:
    """The local weights file for the trunk: a path, the cached scenes pretraining, or None
    (only with ``model.allow_random_init``; the paper profile must not silently start random)."""
    model = _section(config, "model")
    weights = model.get("backbone_weights")
    if weights == SCENES_PRETRAIN:
        from capbench.methods.backbone_pretrain import pretrain_backbone

        opts = _section(config, "pretrain")
        opts.setdefault("arch", model.get("backbone", "timm::resnet18"))
        return str(pretrain_backbone(**opts))
    if weights:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"model.backbone_weights: {weights} is not a file")
        return str(weights)
    if not model.get("allow_random_init", False):
        raise ValueError(
            "model.backbone_weights is not set: give a local ImageNet checkpoint "
            "(--backbone-weights PATH) or set model.allow_random_init: true (--allow-random-init)"
        )
    return None


def module_kwargs(
    config: dict[str, Any], mode: str, vocab_size: int | None, seed: int
) -> dict[str, Any]:
    """The module's keyword arguments from a row config (``model``, ``train``, ``mining``,
    ``pretrain``): the one mapping the rows, the baseline and the GPU check all build from."""
    model, train = _section(config, "model"), _section(config, "train")
    mining = {
        f.name: _section(config, "mining")[f.name]
        for f in fields(MiningConfig)
        if f.name in _section(config, "mining")
    }
    kwargs: dict[str, Any] = {
        "backbone": model.get("backbone", "timm::resnet18"),
        "backbone_weights": resolve_backbone_weights(config),
        "mode": mode,
        "vocab_size": vocab_size if _normalise_mode(mode) != "V" else None,
        "out_dim": model.get("out_dim"),
        "levels": int(model.get("levels", 3)),
        "scales": tuple(model.get("scales", (1.0, 1 / math.sqrt(2)))),
        "margin": float(train.get("margin", 0.1)),
        "lr": float(train.get("lr", 1e-5)),
        "lr_after": float(train.get("lr_after", 1e-6)),
        "lr_drop_step": int(train.get("lr_drop_step", 8000)),
        "mining": mining,
        "freeze_bn": bool(train.get("freeze_bn", True)),
        "channels_last": bool(model.get("channels_last", False)),
        "embed_batch_size": int(train.get("embed_batch_size", 32)),
        "num_workers": int(train.get("num_workers", 0)),
        "whitening_images": int(train.get("whitening_images", 500)),
        "trainable_from": train.get("trainable_from"),
        "text_lr_scale": float(train.get("text_lr_scale", 1.0)),
        "micro_batches": int(train.get("micro_batches", 1)),
        "seed": int(seed),
    }
    return kwargs


def load_semantic_retrieval(path: str | Path, map_location: str = "cpu") -> SemanticRetrieval:
    """A trained (or baseline) model from its checkpoint; the backbone file is not re-read."""
    return SemanticRetrieval.load_from_checkpoint(
        str(path), map_location=map_location, backbone_weights=None
    )


def _save_plain_checkpoint(model: SemanticRetrieval, path: Path) -> None:
    """A Lightning-loadable checkpoint written without a Trainer (the untrained baseline)."""

    ckpt = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": L.__version__,
        "capbench_provenance": dict(model.provenance),
    }
    with atomic_path(path, suffix=".ckpt") as tmp:
        torch.save(ckpt, tmp)


def build_visual_baseline(
    records_train: Sequence[CaptionedImage],
    config: dict[str, Any],
    workdir: str | Path,
    seed: int = 0,
    data: Dataset | None = None,
) -> tuple[SemanticRetrieval, Path]:
    """The "(-, V)" row: the (pre)trained trunk + R-MAC whose whitening is learned on training
    images, with no fine-tuning. Cached as ``workdir/baseline.ckpt``."""
    path = Path(workdir) / "baseline.ckpt"
    if path.is_file():
        return load_semantic_retrieval(path), path
    model = SemanticRetrieval(**module_kwargs(config, "V", None, seed))
    images = data if data is not None else RecordImages(records_train, image_transform(config))
    model.init_whitening_from(images)
    _save_plain_checkpoint(model, path)
    return model.eval(), path


def train_semantic_retrieval(
    records_train: Sequence[CaptionedImage],
    tfidf_train: Any,
    config: dict[str, Any],
    workdir: str | Path,
    seed: int = 0,
    mode: str | None = None,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    data: TrainingData | None = None,
    loggers: list[Any] | None = None,
) -> tuple[SemanticRetrieval, Path]:
    """Fit a model with Lightning (checkpoints in ``workdir/checkpoints``; resumes from
    ``last.ckpt`` there) and return it in eval mode with its last checkpoint.

    ``tfidf_train``: a fitted ``StemmedTfidf`` or the training records' tf-idf matrix; ``data``
    replaces the records-based wiring (tests, custom datasets); ``loggers`` defaults to a CSV
    logger in ``workdir`` (rows pass ``capbench.methods.loggers.make_loggers(ctx)``).
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    train = _section(config, "train")
    mode = _normalise_mode(mode or _section(config, "row").get("train") or train.get("mode", "V"))
    ckpt_dir = Path(workdir) / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    max_steps = int(train.get("max_steps", 16_000))
    if last.is_file() and _checkpoint_step(last) >= max_steps:  # finished: no data, no mining
        return load_semantic_retrieval(last).eval(), last
    L.seed_everything(int(seed), workers=True, verbose=False)
    if data is None:
        data = build_training_data(records_train, tfidf_train, config, progress=progress)
    model = SemanticRetrieval(**module_kwargs(config, mode, data.tfidf.shape[1], seed))
    model.attach_training_data(data)
    trainer = L.Trainer(
        default_root_dir=str(workdir),
        accelerator=accelerator,
        devices=devices,
        max_steps=max_steps,
        max_epochs=-1,
        precision=train.get("precision", "32-true"),
        reload_dataloaders_every_n_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=loggers or L.pytorch.loggers.CSVLogger(str(workdir), name="logs"),
        callbacks=[
            ModelCheckpoint(dirpath=str(ckpt_dir), save_last=True, save_top_k=1, every_n_epochs=1)
        ],
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, model.mining_cfg.remine_every)),
    )
    trainer.fit(model, ckpt_path=str(last) if last.is_file() else None)
    # the final state, also when max_steps ended mid-round (after the last epoch-end save)
    trainer.save_checkpoint(str(last))
    model.eval()
    return model, last


def _checkpoint_step(path: Path) -> int:
    """``global_step`` of a Lightning checkpoint, read without loading its tensors."""
    ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    return int(ckpt.get("global_step", 0))


def embed_records(
    model: SemanticRetrieval,
    records: Sequence[CaptionedImage],
    config: dict[str, Any],
    progress: bool = False,
) -> Tensor:
    """phi of ``records``' images, in order, ``(N, D)`` on the CPU."""
    return model.embed_dataset(
        RecordImages(records, image_transform(config)), progress=progress
    ).cpu()


def mining_config_dict(cfg: MiningConfig) -> dict[str, Any]:
    return asdict(cfg)
