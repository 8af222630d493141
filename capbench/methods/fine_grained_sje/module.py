"""The LightningModule of Reed et al. 2016: F(v, t) = theta(v)^T phi(t), trained with the
structured joint embedding hinge (DS-SJE: image and text terms; DA-SJE: the image term).

theta is the identity on fixed 1024-d image features (the image side is a no-op, as in
``train_sje_hybrid.lua``); phi is a text encoder registered in ``capbench.models.text_encoders``
whose output size is the features'. Batches come from ``SJEFeatureData``: row i of the image
features and of the captions is one class, every other row a wrong class (``capbench.losses``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from capbench.losses import da_sje_loss, ds_sje_loss
from capbench.methods.config import as_config, config_dict
from capbench.methods.fine_grained_sje.config import FineGrainedSJEConfig, ModelConfig, TrainConfig
from capbench.models.text_encoders import build_text_encoder


class FineGrainedSJE(L.LightningModule):
    """phi(text) scored against fixed image features by dot product.

    Args:
        model: the text encoder and image-feature options (the row's ``model`` section).
        train: loss and optimisation (``train``).
        pretrain: options of the scenes backbone pretraining (``pretrain``).
        vocab_size: the tokenizer's size (classes for the attribute encoder).
        feature_dim: the image features' size, which the text embedding matches.
        seed: the run's seed (logged; the data order is the DataModule's).
        class_attributes: ``(classes, attributes)`` table of the attribute encoder (its
            buffer; not a hyperparameter).
        word_vectors: ``(vocab_size, dim)`` table of ``word2vec_avg`` (its buffer).
    """

    def __init__(
        self,
        model: ModelConfig = ModelConfig(),
        train: TrainConfig = TrainConfig(),
        pretrain: dict[str, Any] | None = None,
        vocab_size: int = 2,
        feature_dim: int = 1024,
        seed: int = 0,
        class_attributes: Any = None,
        word_vectors: Any = None,
    ) -> None:
        super().__init__()
        self.cfg = FineGrainedSJEConfig(
            model=as_config(ModelConfig, model, "model"),
            train=as_config(TrainConfig, train, "train"),
            pretrain=dict(pretrain or {}),
        )
        self.seed = int(seed)
        extra = {"vocab_size": int(vocab_size), "feature_dim": int(feature_dim), "seed": self.seed}
        self.save_hyperparameters({**config_dict(self.cfg), **extra})
        m = self.cfg.model
        options = dict(m.encoder_options)
        if m.encoder == "attributes":
            if class_attributes is None:
                raise ValueError("the attributes encoder needs class_attributes")
            options["class_attributes"] = torch.as_tensor(class_attributes, dtype=torch.float32)
            options["init_bound"] = m.init_bound
        elif m.encoder == "word2vec_avg":
            if word_vectors is None:
                raise ValueError("the word2vec_avg encoder needs word_vectors")
            vectors = torch.as_tensor(word_vectors, dtype=torch.float32)
            options["vectors"] = vectors
            options["known"] = vectors.abs().sum(1) > 0  # words without a vector are all zeros
            options["init_bound"] = m.init_bound
        else:
            options["init_bound"] = m.init_bound
        self.encoder = build_text_encoder(m.encoder, int(vocab_size), int(feature_dim), **options)

    def embed_text(self, tokens: Tensor) -> Tensor:
        """phi of token ids ``(B, L)`` (class ids ``(B, 1)`` for attributes) -> ``(B, D)``."""
        return self.encoder(tokens)

    def loss(self, features: Tensor, tokens: Tensor) -> Tensor:
        text = self.embed_text(tokens)
        t = self.cfg.train
        fn = ds_sje_loss if t.symmetric else da_sje_loss
        return fn(features.to(text.dtype), text, t.margin)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if "features" not in batch:
            raise ValueError(
                "fine_grained_sje trains on fixed image features (batches with 'features'): "
                "build its data with capbench.methods.fine_grained_sje.train.build_datamodule"
            )
        loss = self.loss(batch["features"], batch["tokens"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["tokens"].shape[0])
        return loss

    @torch.no_grad()
    def embed_captions(self, tokens: Tensor, batch_size: int = 256) -> Tensor:
        """phi of many captions ``(M, L)``, in batches, eval mode, on the CPU."""
        was_training = self.training
        self.eval()
        out = [
            self.embed_text(tokens[i : i + batch_size].to(self.device)).float().cpu()
            for i in range(0, tokens.shape[0], batch_size)
        ]
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, self.hparams["feature_dim"])

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        # RMSprop as torch7's optim.rmsprop (alpha 0.99, epsilon 1e-8: PyTorch's defaults too)
        opt = torch.optim.RMSprop(self.parameters(), lr=t.lr, alpha=0.99, eps=1e-8)
        # train_sje_hybrid.lua: learning rate x learning_rate_decay after every epoch
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=t.lr_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
