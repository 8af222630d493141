"""The LightningModule of Malali & Keller 2022 and of its VSE0 / VSE++ baselines: one joint
image-caption space, trained on (image, one of its captions) batches from
``CaptionDataModule(view="pairs")``.

Per batch (row i = image i and one of its captions; every other row is a negative):

* ranking: the bidirectional hinge (``capbench.losses.bidirectional_hinge``) on scores that are
  ``-||a - b||`` (``model.measure: l2``, Malali) or ``a . b`` (``dot``, VSE), summed over the
  negatives (VSE0) or on the hardest one (VSE++, Malali by our reading);
* quantization (``quantizer.enabled``): both sides pass through a product quantizer with soft
  assignment and straight-through codes; the same hinge with continuous queries against
  quantized items (what asymmetric search sees), plus a commitment term;
* center loss (``loss.center_weight`` > 0): each training image with its captions is one
  concept with a learned center, which both modalities' embeddings are pulled to;
* adaptive margin (``loss.adaptive_margin``): the margin is a buffer (so it is checkpointed and
  resumes exactly) updated after every step by ``capbench.losses.adaptive_margin_update`` from
  the batch's positive and negative distances, and logged as ``train/margin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from capbench.data.views import collate_skip_none
from capbench.eval.extract import embed_in_order, rows_in_order
from capbench.losses import (
    adaptive_margin_update,
    bidirectional_hinge,
    center_loss,
    pairwise_l2,
)
from capbench.methods.config import as_config, config_dict
from capbench.methods.empty_batch import empty_batch_loss
from capbench.methods.frozen_features import frozen_features
from capbench.methods.quantized_embedding.config import (
    LossConfig,
    ModelConfig,
    QuantizedEmbeddingConfig,
    QuantizerConfig,
    TrainConfig,
)
from capbench.methods.quantized_embedding.towers import (
    GRUTextTower,
    ImageTower,
    TransformerTextTower,
)
from capbench.methods.training import resolve_backbone_weights
from capbench.models.quantizers import SoftProductQuantizer


def _kept_rows(value: Any, keep: Tensor) -> Any:
    """The rows ``keep`` of a batch field with one row per pair (a tensor or a list); any other
    field (a count, the skipped-file messages) as it is."""
    n = len(keep)
    if isinstance(value, Tensor) and value.shape[:1] == (n,):
        return value[keep]
    if isinstance(value, list) and len(value) == n:
        return [x for x, ok in zip(value, keep.tolist(), strict=True) if ok]
    return value


class QuantizedEmbedding(L.LightningModule):
    """Image tower + text tower into one space, optionally quantized (see the module docstring).

    Args:
        model, loss, quantizer, train: the config's sections.
        pretrain: options of the scenes backbone pretraining (``model.backbone_weights:
            scenes-pretrain``).
        text_vocab_size: the word vocabulary; None = read from the DataModule at fit.
        n_concepts: training images (one center each); None = read from the DataModule at fit.
        seed: the run's seed (saved with the hyperparameters).
    """

    def __init__(
        self,
        model: ModelConfig = ModelConfig(),
        loss: LossConfig = LossConfig(),
        quantizer: QuantizerConfig = QuantizerConfig(),
        train: TrainConfig = TrainConfig(),
        pretrain: dict[str, Any] | None = None,
        text_vocab_size: int | None = None,
        n_concepts: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = QuantizedEmbeddingConfig(
            model=as_config(ModelConfig, model, "model"),
            loss=as_config(LossConfig, loss, "loss"),
            quantizer=as_config(QuantizerConfig, quantizer, "quantizer"),
            train=as_config(TrainConfig, train, "train"),
            pretrain=dict(pretrain or {}),
        )
        self.seed = int(seed)
        extra = {"text_vocab_size": text_vocab_size, "n_concepts": n_concepts, "seed": self.seed}
        self.save_hyperparameters({**config_dict(self.cfg), **extra})
        m, q = self.cfg.model, self.cfg.quantizer
        weights = resolve_backbone_weights(
            m.backbone, m.backbone_weights, m.allow_random_init, self.cfg.pretrain
        )
        self.image = ImageTower(m.backbone, weights, m.embed_dim, m.finetune_trunk)
        self.text: GRUTextTower | TransformerTextTower | None = None
        if m.text_encoder == "transformer":
            self.text = TransformerTextTower(m.transformer, m.embed_dim, m.transformer_max_len)
        elif text_vocab_size:
            self.text = GRUTextTower(int(text_vocab_size), m.word_dim, m.embed_dim)
        self.quantizer: SoftProductQuantizer | None = None
        if q.enabled:
            self.quantizer = SoftProductQuantizer(
                m.embed_dim, q.subspaces, q.codewords, q.temperature
            )
        self.centers: nn.Parameter | None = None
        if n_concepts and self.cfg.loss.center_weight > 0:
            self.centers = self._new_centers(int(n_concepts))
        self.register_buffer("margin", torch.tensor(float(self.cfg.loss.margin)))
        self.provenance: dict[str, Any] = {
            "backbone": m.backbone,
            "backbone_init": f"file:{weights}" if weights else "random",
        }

    def _new_centers(self, n: int) -> nn.Parameter:
        d = self.cfg.model.embed_dim
        return nn.Parameter(F.normalize(torch.randn(n, d), dim=-1))

    # ------------------------------------------------------------------ embeddings
    def _finish(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.cfg.model.normalize else x

    def embed_images(self, images: Tensor) -> Tensor:
        """``(B, D)`` image embeddings."""
        return self._finish(self.image(images.to(self.device)))

    forward = embed_images

    def embed_texts(self, texts: Sequence[str]) -> Tensor:
        """``(B, D)`` caption embeddings of raw captions (the transformer tower)."""
        if not isinstance(self.text, TransformerTextTower):
            raise RuntimeError("embed_texts needs model.text_encoder: transformer")
        return self._finish(self.text.embed_texts(list(texts)))

    def embed_batch_captions(self, batch: dict[str, Any]) -> Tensor:
        """The caption embeddings of a ``pairs`` batch: its raw captions for the transformer
        tower, its word ids for the GRU."""
        if isinstance(self.text, TransformerTextTower):
            return self.embed_texts(batch["caption"])
        return self.embed_tokens(batch["tokens"], batch["length"])

    def embed_tokens(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, D)`` caption embeddings of token ids ``(B, L)`` (the GRU tower)."""
        if isinstance(self.text, TransformerTextTower):
            raise RuntimeError("the transformer tower embeds raw captions: use embed_texts")
        if self.text is None:
            raise RuntimeError("the text tower is built at fit (it needs the vocabulary size)")
        return self._finish(self.text(tokens.to(self.device), lengths))

    def reconstruct(self, x: Tensor) -> Tensor:
        """What the database stores of ``x``: its codes' reconstruction (``x`` itself without a
        quantizer)."""
        if self.quantizer is None:
            return x
        return self.quantizer.decode(self.quantizer.encode(x))

    @torch.no_grad()
    def embed_image_dataset(self, dataset: Dataset) -> Tensor:
        """Embeddings of an ``images`` view dataset, in order (eval mode; every image must
        decode: a test image that does not is an error naming it). Under DDP each rank embeds
        its share and every rank gets all rows (``capbench.eval.extract.rows_in_order``)."""
        was = self.training
        self.eval()

        def embed_share(share: list[int]) -> Tensor:
            loader = DataLoader(
                Subset(dataset, share),
                batch_size=self.cfg.train.embed_batch_size,
                num_workers=self.cfg.train.num_workers,
                collate_fn=collate_skip_none,
            )
            out = []
            for batch in loader:
                if batch["n_skipped"]:
                    raise ValueError(f"test images could not be decoded: {batch['skipped']}")
                out.append(self.embed_images(batch["image"].to(self.device)).float().cpu())
            return torch.cat(out) if out else torch.zeros((0, 0))  # a rank may hold no item

        try:
            return rows_in_order(embed_share, len(dataset))  # type: ignore[arg-type]
        finally:
            self.train(was)

    @torch.no_grad()
    def embed_captions(self, captions: Sequence[str], tokenizer: Any) -> Tensor:
        """Embeddings of ``captions`` tokenized with the training vocabulary, in order (shared
        between DDP ranks as :meth:`embed_image_dataset` is)."""
        was = self.training
        self.eval()
        max_len = self.cfg.model.max_len

        def encode(idx: Sequence[int]) -> Tensor:
            texts = [captions[i] for i in idx]
            if isinstance(self.text, TransformerTextTower):
                return self.embed_texts(texts)
            ids = [tokenizer.encode(c, max_len=max_len) for c in texts]
            return self.embed_tokens(torch.tensor(ids, dtype=torch.long, device=self.device))

        out = embed_in_order(encode, len(captions), self.cfg.train.embed_batch_size, "captions")
        self.train(was)
        return out

    # ------------------------------------------------------------------ training
    def _datamodule(self) -> Any:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "vocab_size"):
            raise RuntimeError(
                "QuantizedEmbedding trains from CaptionDataModule(view='pairs'): pass one to "
                "Trainer.fit(model, datamodule=...)"
            )
        return dm

    def setup(self, stage: str) -> None:
        """Build the text tower and the centers from the DataModule when they were not given
        (LightningCLI), and save their sizes for reloading."""
        if stage != "fit" or self._trainer is None:
            return
        dm = self._datamodule()
        if self.text is None:
            vocab = int(dm.vocab_size)
            m = self.cfg.model
            self.text = GRUTextTower(vocab, m.word_dim, m.embed_dim).to(self.device)
            self.hparams["text_vocab_size"] = vocab
        if self.centers is None and self.cfg.loss.center_weight > 0:
            n = len(dm.records("train"))
            self.centers = self._new_centers(n).to(self.device)
            self.hparams["n_concepts"] = n

    def on_fit_start(self) -> None:
        """A frozen trunk's pooled features of every training image, computed once in record
        order with a fixed batch size (so a resumed run computes the same numbers); training
        steps then read them by the batch's ``index`` instead of running the trunk."""
        self._set_train_features(None)
        if self.cfg.model.finetune_trunk:
            return
        from capbench.data.views import ImagesDataset

        dm = self._datamodule()
        images = ImagesDataset(dm.records("train"), dm.transform(train=False))
        if dm.augment:
            return  # augmented images differ each epoch: run the trunk on them
        self._set_train_features(self._pooled_features(images))

    def _set_train_features(self, feats: Tensor | None) -> None:
        """Keep the cached training features and which rows are NaN (images that could not be
        read), found once here: no check, nor device sync, at every step."""
        self._train_features = feats
        bad = None if feats is None else torch.isnan(feats).any(dim=1)
        self._unreadable = bad if bad is not None and bool(bad.any()) else None

    def on_train_epoch_start(self) -> None:
        """``quantizer.codebook_fit: kmeans``: the codebooks become k-means of the current
        training embeddings (every image and every caption) before the first epoch and every
        ``refit_every`` epochs; a resumed run refits at the same epochs as an unbroken one."""
        q = self.cfg.quantizer
        if self.quantizer is None or q.codebook_fit != "kmeans":
            return
        epoch = self.current_epoch
        if epoch and (q.refit_every == 0 or epoch % q.refit_every):
            return
        x = torch.cat([self._all_train_images(), self._all_train_captions()])
        self.quantizer.fit_codebooks(x, seed=self.seed + epoch, iterations=q.kmeans_iterations)

    @torch.no_grad()
    def _all_train_images(self) -> Tensor:
        """Embeddings of every readable training image, in eval mode (BatchNorm untouched)."""
        was = self.training
        self.eval()
        feats = getattr(self, "_train_features", None)
        if feats is not None:
            bad = getattr(self, "_unreadable", None)
            out = self._finish(self.image.fc(feats if bad is None else feats[~bad]))
        else:
            from capbench.data.views import ImagesDataset

            dm = self._datamodule()
            images = ImagesDataset(dm.records("train"), dm.transform(train=False))
            out = frozen_features(
                self.embed_images,
                images,
                self.cfg.model.embed_dim,
                self.device,
                self.cfg.train.embed_batch_size,
                self.cfg.train.num_workers,
            )
            out = out[~torch.isnan(out).any(dim=1)]
        self.train(was)
        return out

    def _all_train_captions(self) -> Tensor:
        dm = self._datamodule()
        captions = [c for r in dm.records("train") for c in r.captions]
        return self.embed_captions(captions, dm.tokenizer).to(self.device)

    def _pooled_features(self, dataset: Dataset) -> Tensor:
        return frozen_features(
            self.image.pooled,
            dataset,
            self.image.fc.in_features,
            self.device,
            self.cfg.train.embed_batch_size,
            self.cfg.train.num_workers,
        )

    def _without_unreadable(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` without the pairs whose image has no cached feature (a NaN row: the file
        could not be read when the features were cached, and was counted then). Batches that
        load their images already lack them (``collate_skip_none``); a cached-feature batch
        carries only indices, and one NaN row would make every weight NaN at the first step."""
        bad = getattr(self, "_unreadable", None)
        if bad is None or not len(batch["index"]):
            return batch
        keep = ~bad[batch["index"].to(bad.device)].cpu()
        if bool(keep.all()):
            return batch
        return {k: _kept_rows(v, keep) for k, v in batch.items()}

    def _train_image_embeddings(self, batch: dict[str, Any]) -> Tensor:
        feats = getattr(self, "_train_features", None)
        if feats is None:
            return self.embed_images(batch["image"])
        return self._finish(self.image.fc(feats[batch["index"].to(self.device)]))

    def scores(self, a: Tensor, b: Tensor) -> Tensor:
        """Similarities of every row of ``a`` with every row of ``b`` (larger = closer)."""
        if self.cfg.model.measure == "l2":
            return -pairwise_l2(a, b)
        return a @ b.T

    def negatives_now(self) -> str:
        """``loss.negatives``, except "sum" during the first ``loss.hardest_warmup_epochs``."""
        lc = self.cfg.loss
        if lc.negatives == "hardest" and self.current_epoch < lc.hardest_warmup_epochs:
            return "sum"
        return lc.negatives

    def batch_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The enabled terms for a batch of (image, caption) pairs, and their weighted sum."""
        lc = self.cfg.loss
        img = self._train_image_embeddings(batch)
        txt = self.embed_batch_captions(batch)
        s = self.scores(img, txt)
        margin = self.margin.detach()
        negatives = self.negatives_now()
        out = {"rank": bidirectional_hinge(s, s, margin, negatives)}
        total = out["rank"]
        if self.quantizer is not None:
            q_img, _ = self.quantizer(img)
            q_txt, _ = self.quantizer(txt)
            # image queries against coded captions; caption queries against coded images
            s_i2t, s_t2i = self.scores(img, q_txt), self.scores(q_img, txt)
            out["rank_quantized"] = bidirectional_hinge(s_i2t, s_t2i, margin, negatives)
            out["commitment"] = 0.5 * (
                ((img - q_img) ** 2).sum(-1).mean() + ((txt - q_txt) ** 2).sum(-1).mean()
            )
            total = total + lc.quantized_weight * out["rank_quantized"]
            total = total + lc.commitment_weight * out["commitment"]
        if self.centers is not None:
            idx = batch["index"].to(self.device)
            out["center"] = 0.5 * (
                center_loss(img, self.centers, idx) + center_loss(txt, self.centers, idx)
            )
            total = total + lc.center_weight * out["center"]
        if lc.adaptive_margin and s.shape[0] > 1:
            eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
            new = adaptive_margin_update(
                self.margin,
                -s.detach()[eye],
                -s.detach()[~eye],
                lc.margin_momentum,
                lc.margin_gap_fraction,
                lc.margin_min,
                lc.margin_max,
            )
            self.margin.copy_(new)
        out["loss"] = total
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        batch = self._without_unreadable(batch)
        if not len(batch["index"]):  # every image of this batch was unreadable
            return empty_batch_loss(self)
        losses = self.batch_losses(batch)
        bs = int(batch["index"].shape[0])
        for k, v in losses.items():
            self.log(f"train/{k}", v, prog_bar=k == "loss", batch_size=bs)
        self.log("train/margin", self.margin, batch_size=bs)
        return losses["loss"]

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=t.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=t.lr_update, gamma=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["capbench_provenance"] = dict(self.provenance)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.provenance = dict(checkpoint.get("capbench_provenance", self.provenance))
