"""The LightningModule of Gordo & Larlus 2017: phi = R-MAC(ResNet(image)), trained with
hard-mined triplets whose relevance is the tf-idf k-NN of the images' region phrases; with a
text side theta = normalize(W^T tfidf) for the V+T and WSABIE losses.

Training modes (``train_mode``): ``V`` (L_v, Eq. 1), ``V+T`` (L_v + L_t1 + L_t2, Eqs. 1-3, six
streams) and ``WSABIE`` (Eq. 2 alone). A query by image + text sums phi(image) and theta(text)
and renormalises: the paper says the two embeddings are "combined" (Figure 5 adds and subtracts
word embeddings the same way); the database is always image-only.

Data comes from ``CaptionDataModule(view="triplets")``: one epoch is one mining round, whose
loader the DataModule builds with this model through the Trainer (:meth:`mining_plan`,
:meth:`embed_dataset`, :meth:`candidate_features`); the text rows of a triplet are read from the
DataModule's relevance. The PCA-whitening is fitted on the training images' regional
descriptors at fit start, as R-MAC does before fine-tuning; BatchNorm statistics stay frozen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from capbench.data.sampling import MiningConfig
from capbench.data.triplets import MiningPlan
from capbench.data.views import collate_skip_none
from capbench.losses import gordo_text_losses, gordo_visual_loss, wsabie_loss
from capbench.methods.config import as_config, config_dict
from capbench.methods.empty_batch import empty_batch_loss
from capbench.methods.semantic_retrieval.config import (
    TRAIN_MODES,
    ModelConfig,
    SemanticRetrievalConfig,
    TrainConfig,
    normalise_mode,
)
from capbench.methods.training import resolve_backbone_weights
from capbench.models.backbones import create_backbone
from capbench.models.rmac import RMAC
from capbench.models.text_projection import TextProjection, csr_to_torch


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


class _Positions(Dataset):
    """Items of ``dataset`` tagged with their position, so unreadable ones leave a known gap."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        item = self.dataset[i]
        return None if item is None else {"image": item["image"], "position": i}


class SemanticRetrieval(L.LightningModule):
    """phi = R-MAC(ResNet(image)); theta = normalize(W^T tfidf) for V+T and WSABIE.

    Args:
        model: trunk, pooling and image size (the row config's ``model`` section).
        train: loss, optimisation and schedule (``train``).
        mining: the mining rounds (``mining``); the margin is ``train.margin``.
        pretrain: options of the scenes backbone pretraining (``pretrain``), used when
            ``model.backbone_weights`` is ``"scenes-pretrain"``.
        train_mode: ``V``, ``V+T`` or ``WSABIE`` (the row's ``row.train_mode``).
        tfidf_vocab_size: the tf-idf vocabulary of theta; None = read from the DataModule at fit.
        seed: seeds the mining rounds and the whitening sample.
    """

    def __init__(
        self,
        model: ModelConfig = ModelConfig(),
        train: TrainConfig = TrainConfig(),
        mining: MiningConfig = MiningConfig(),
        pretrain: dict[str, Any] | None = None,
        train_mode: str = "V",
        tfidf_vocab_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = SemanticRetrievalConfig(
            model=as_config(ModelConfig, model, "model"),
            train=as_config(TrainConfig, train, "train"),
            mining=as_config(MiningConfig, mining, "mining"),
            pretrain=dict(pretrain or {}),
        )
        self.train_mode = normalise_mode(train_mode)
        if self.train_mode not in TRAIN_MODES:
            raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
        self.seed = int(seed)
        hparams = {
            "train_mode": self.train_mode,
            "tfidf_vocab_size": tfidf_vocab_size,
            "seed": self.seed,
        }
        self.save_hyperparameters({**config_dict(self.cfg), **hparams})
        m, t = self.cfg.model, self.cfg.train
        if self.cfg.mining.batch_size % t.micro_batches or t.micro_batches < 1:
            raise ValueError(
                f"train.micro_batches={t.micro_batches} must divide the batch of "
                f"{self.cfg.mining.batch_size} triplets (mining.batch_size)"
            )
        weights = resolve_backbone_weights(
            m.backbone, m.backbone_weights, m.allow_random_init, self.cfg.pretrain
        )
        self.trunk, channels = create_backbone(m.backbone, weights, channels_last=m.channels_last)
        self.rmac = RMAC(channels, m.out_dim, levels=m.levels, scales=tuple(m.scales))
        if t.trainable_from:
            freeze_trunk_before(self.trunk, t.trainable_from)
        self.text: TextProjection | None = None
        if self.train_mode != "V" and tfidf_vocab_size:
            self.text = TextProjection(int(tfidf_vocab_size), self.rmac.out_dim)
        self.register_buffer("whitening_ready", torch.zeros((), dtype=torch.bool))
        self.provenance: dict[str, Any] = {
            "backbone": m.backbone,
            "backbone_init": f"file:{weights}" if weights else "random",
        }

    # ------------------------------------------------------------------ embeddings
    @property
    def out_dim(self) -> int:
        return self.rmac.out_dim

    def _prep(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.cfg.model.channels_last:
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

    def _loader(self, dataset: Dataset) -> DataLoader:
        from capbench.data.datamodule import CountingDataLoader

        return CountingDataLoader(  # reports each corrupt file (its row stays NaN)
            dataset,
            batch_size=self.cfg.train.embed_batch_size,
            num_workers=self.cfg.train.num_workers,
            collate_fn=collate_skip_none,
        )

    @torch.no_grad()
    def embed_dataset(
        self,
        dataset: Dataset,
        progress: bool = False,
        desc: str = "embedding",
        precision: str | None = None,
        shared: bool | None = None,
    ) -> Tensor:
        """phi of every item of an image dataset (dicts with ``"image"``), in order, eval mode;
        the row of an unreadable image (an item that is None) is NaN. ``precision``: None = the
        Trainer's (mining, during fit); evaluation passes ``"32-true"`` so that every row is
        scored at one precision, however its model was obtained. ``shared``: in a DDP run each
        rank embeds its share of the items and every rank gets all rows, on the CPU
        (``capbench.eval.extract``: each item once in the job); every rank must call it.
        Evaluation passes True; None (mining) shares when this module's fit is distributed,
        which also hands every rank the same features, so all ranks mine the same triplets
        (each rank embedding the whole pool could round differently on different devices)."""
        from capbench.eval.extract import rows_in_order

        if shared is None:
            shared = self._trainer is not None and self._trainer.world_size > 1
        was_training = self.training
        self.eval()

        def embed_share(share: list[int]) -> Tensor:
            loader: Any = self._loader(_Positions(Subset(dataset, share)))
            if progress:
                from tqdm.auto import tqdm

                loader = tqdm(loader, desc=desc, unit="batch", leave=False)
            out = torch.full((len(share), self.out_dim), float("nan"), device=self.device)
            for batch in loader:
                if "image" in batch:
                    with self._autocast(precision):
                        out[batch["position"].to(self.device)] = self.embed_images(
                            batch["image"]
                        ).float()
            return out

        try:
            if not shared:
                return embed_share(list(range(len(dataset))))  # type: ignore[arg-type]
            return rows_in_order(embed_share, len(dataset))  # type: ignore[arg-type]
        finally:
            self.train(was_training)

    def _autocast(self, precision: str | None = None) -> Any:
        precision = precision or self.trainer_precision()
        bf16 = precision.startswith("bf16") and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)

    def trainer_precision(self) -> str:
        try:
            return str(self.trainer.precision)
        except RuntimeError:
            return "32-true"

    # ------------------------------------------------------------------ whitening
    @torch.no_grad()
    def init_whitening_from(self, images: Dataset) -> None:
        """PCA-whitening learned on the regional descriptors of up to ``whitening_images``
        random images (seeded), as R-MAC does before any fine-tuning."""
        n = len(images)  # type: ignore[arg-type]
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(n, generator=g)[: self.cfg.train.whitening_images].tolist()
        was_training = self.training
        self.eval()
        feats = []
        c = self.rmac.whiten.in_features
        for batch in self._loader(Subset(images, pick)):
            imgs = batch.get("image")
            if imgs is None:
                continue
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
    def mining_plan(self) -> MiningPlan:
        """What the ``triplets`` view mines with (``capbench.data.triplets.TripletMiner``)."""
        t = self.cfg.train
        return MiningPlan(self.cfg.mining, t.margin, self.seed, t.max_steps, t.micro_batches)

    def _datamodule(self) -> Any:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "relevance"):
            raise RuntimeError(
                "SemanticRetrieval trains from CaptionDataModule(view='triplets'): pass one to "
                "Trainer.fit(model, datamodule=...)"
            )
        return dm

    def candidate_features(self, pool: Tensor) -> Tensor | None:
        """WSABIE ranks text candidates for an image query (Eq. 2): theta of the pool's rows."""
        if self.train_mode != "WSABIE":
            return None
        rows = self._datamodule().relevance.tfidf[pool.cpu().numpy()]
        return self.embed_text(rows).float()

    def setup(self, stage: str) -> None:
        """One epoch = one mining round and ``micro_batches`` loader batches = one update,
        whoever built the Trainer (LightningCLI included); theta learns the vocabulary size
        from the DataModule when it was not given."""
        if stage != "fit" or self._trainer is None:
            return
        self.trainer.reload_dataloaders_every_n_epochs = 1
        self.trainer.accumulate_grad_batches = self.cfg.train.micro_batches
        vocab = self._datamodule().relevance.vocab_size
        if self.train_mode != "V" and self.text is None:  # saved for reloads
            self.text = TextProjection(vocab, self.rmac.out_dim).to(self.device)
            self.hparams["tfidf_vocab_size"] = vocab
        if self.text is not None and self.text.vocab_size != vocab:
            raise ValueError(f"the tf-idf has {vocab} words, the model {self.text.vocab_size}")

    def on_fit_start(self) -> None:
        if not bool(self.whitening_ready):
            self.init_whitening_from(self._datamodule().train_images())

    def train(self, mode: bool = True) -> SemanticRetrieval:
        super().train(mode)
        if mode and self.cfg.train.freeze_bn:  # BN keeps its (pretrained) statistics
            for m in self.trunk.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def _theta_of(self, idx: Tensor) -> Tensor:
        rows = self._datamodule().relevance.tfidf[idx.cpu().numpy()]
        return self.embed_text(csr_to_torch(rows, device=self.device))

    def triplet_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The mode's losses for a batch of triplets (images and, for text, indices)."""
        q, p, n = batch["q_image"], batch["p_image"], batch["n_image"]
        m = self.cfg.train.margin
        idx = batch["triplet"]
        if self.train_mode == "WSABIE":
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
        if self.train_mode == "V+T":
            theta = self._theta_of(idx.T.reshape(-1))  # q..., p..., n...
            theta_q, theta_p, theta_n = theta.chunk(3)
            out["l_t1"], out["l_t2"] = gordo_text_losses(
                phi_q, phi_p, phi_n, theta_q, theta_p, theta_n, m
            )
        out["loss"] = sum(out.values())  # type: ignore[assignment]
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if "triplet" not in batch:  # every triplet of this batch had an unreadable image
            return empty_batch_loss(self)
        losses = self.triplet_losses(batch)
        bs = int(batch["triplet"].shape[0])
        for k, v in losses.items():
            self.log(f"train/{k}", v, prog_bar=k == "loss", batch_size=bs)
        if batch_idx == 0:
            for k, v in self._datamodule().mining_stats.items():
                self.log(f"mining/{k}", v, batch_size=bs)
        return losses["loss"]

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        lr, after, drop = t.lr, t.lr_after, t.lr_drop_step
        # theta's W starts from random while the trunk starts pretrained: ``text_lr_scale``
        # gives it a larger step (1 = one learning rate for all, as the paper states nothing else).
        trunk, text = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (text if name.startswith("text.") else trunk).append(p)
        groups: list[dict[str, Any]] = [{"params": trunk}]
        if text:
            groups.append({"params": text, "lr": lr * t.text_lr_scale})
        opt = torch.optim.Adam(groups, lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 1.0 if step < drop else after / lr
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["capbench_provenance"] = dict(self.provenance)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.provenance = dict(checkpoint.get("capbench_provenance", self.provenance))
