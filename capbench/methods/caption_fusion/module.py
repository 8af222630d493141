"""The siamese fusion network of Mopuri et al. 2017 as a LightningModule.

One MLP with shared weights maps both images of a pair (their [BoRD ; FIC] vectors) to 512-d;
the graded contrastive loss acts on the distance of the L2-normalised outputs. The retrieval
representation is an inner layer (the 2048-d second one in the official code). Training is Keras
SGD as the code runs it: momentum, per-update learning-rate decay, gradient values clipped; the
validation loss on the held-out pairs (computed at each epoch end) drives early stopping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from capbench.losses import graded_contrastive_loss, siamese_distance
from capbench.methods.caption_fusion.config import (
    FusionModelConfig,
    FusionTrainConfig,
    PairsConfig,
)
from capbench.methods.config import as_config, config_dict

VAL_LOSS = "val/loss"


def build_mlp(cfg: FusionModelConfig) -> nn.Sequential:
    """One block per layer of ``cfg.hidden`` widths: a linear map, followed by a ReLU where
    ``cfg.relu_layers`` names it (the code's two 2048-d layers are linear); He-normal weights
    and zero biases (Keras ``init='he_normal'``)."""
    bad = [i for i in cfg.relu_layers if not 1 <= i <= len(cfg.hidden)]
    if bad:
        raise ValueError(f"model.relu_layers must be in 1..{len(cfg.hidden)}, got {bad}")
    blocks: list[nn.Module] = []
    width = cfg.in_dim
    for i, out in enumerate(cfg.hidden, start=1):
        linear = nn.Linear(width, out)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        blocks.append(nn.Sequential(linear, nn.ReLU()) if i in cfg.relu_layers else linear)
        width = out
    return nn.Sequential(*blocks)


class CaptionFusion(L.LightningModule):
    """Siamese MLP trained with the graded contrastive loss on (a, b, grade) feature pairs."""

    def __init__(
        self,
        model: FusionModelConfig = FusionModelConfig(),
        train: FusionTrainConfig = FusionTrainConfig(),
        pairs: PairsConfig = PairsConfig(),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model_cfg = as_config(FusionModelConfig, model, "model")
        self.train_cfg = as_config(FusionTrainConfig, train, "train")
        self.pairs_cfg = as_config(PairsConfig, pairs, "pairs")
        if not 1 <= self.model_cfg.representation_layer <= len(self.model_cfg.hidden):
            raise ValueError(
                f"model.representation_layer must be in 1..{len(self.model_cfg.hidden)}, "
                f"got {self.model_cfg.representation_layer}"
            )
        self.save_hyperparameters(
            {
                "model": config_dict(self.model_cfg),
                "train": config_dict(self.train_cfg),
                "pairs": config_dict(self.pairs_cfg),
                "seed": seed,
            }
        )
        self.mlp = build_mlp(self.model_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """The 512-d siamese output of ``(B, in_dim)`` features."""
        return self.mlp(x)

    @torch.no_grad()
    def represent(self, x: Tensor) -> Tensor:
        """The retrieval representation: the output of ``representation_layer`` (after its
        ReLU if it has one; the code's layer 2 is linear)."""
        return self.mlp[: self.model_cfg.representation_layer](x)

    def pair_loss(self, a: Tensor, b: Tensor, grade: Tensor) -> Tensor:
        d = siamese_distance(self(a), self(b))
        return graded_contrastive_loss(d, grade, self.train_cfg.margin)

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.pair_loss(batch["a"], batch["b"], batch["grade"])
        self.log("train/loss", loss, on_epoch=True, on_step=False, batch_size=len(batch["a"]))
        return loss

    def on_train_epoch_end(self) -> None:
        """The validation loss on the held-out pairs, for early stopping (Keras computes it on
        ``validation_split`` at each epoch end, in eval mode, without gradients)."""
        dm = getattr(self.trainer, "datamodule", None)
        val = getattr(dm, "val_pairs", None)
        if val is None or len(val["grade"]) == 0:
            return
        was_training = self.training
        self.eval()
        with torch.no_grad():
            loss = self.pair_loss(
                val["a"].to(self.device), val["b"].to(self.device), val["grade"].to(self.device)
            )
        self.train(was_training)
        self.log(VAL_LOSS, loss, prog_bar=True)

    def configure_optimizers(self) -> Any:
        t = self.train_cfg
        opt = torch.optim.SGD(self.parameters(), lr=t.lr, momentum=t.momentum)
        decay = float(t.decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + decay * step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        """Keras ``clipvalue``: every gradient element clipped to ``[-c, c]``."""
        if self.train_cfg.clip_value > 0:
            torch.nn.utils.clip_grad_value_(self.parameters(), self.train_cfg.clip_value)
