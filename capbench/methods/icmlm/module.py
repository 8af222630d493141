"""The LightningModule of ICMLM (Sariyildiz et al. 2020) and its TP baselines.

A ResNet trunk learned from scratch maps an image to a feature map. The modes (``train.mode``):

* ``tfm``: the projected feature map (visual tokens, with their grid position) and the frozen
  text encoder's states of the caption with one concept masked go through a small transformer;
  its output at the masked position predicts the concept (cross-entropy over the K concepts).
* ``att-fc``: the masked position's text state attends over the feature map (one query, scaled
  dot product); the attended visual vector (with ``model.attfc_text``, beside that text state)
  goes through fully-connected layers to the concept.
* ``tp_postag``: multi-label prediction (binary cross-entropy) of the concepts present in the
  image's captions, from the average-pooled map.
* ``tp_label``: multi-label prediction of the image's annotated object categories.

With ``train.tp_postag_weight > 0`` the ICMLM modes add the TP_Postag loss (our reading of the
paper's combined objective). The heads read the last map unless ``model.head_layer`` names an
earlier stage (a finer grid on small images; TP_Postag and TP_Label still read the last map).
Only the trunk is transferred (``capbench.methods.icmlm.features``).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from capbench.data.datamodule import TRAIN
from capbench.methods.config import as_config, config_dict
from capbench.methods.empty_batch import empty_batch_loss
from capbench.methods.icmlm.config import (
    ICMLM_MODES,
    MAX_COSINE_SCALE,
    ConceptsConfig,
    IcmlmConfig,
    ModelConfig,
    TrainConfig,
    check_mode,
)
from capbench.methods.icmlm.data import IGNORE
from capbench.models.backbones import create_backbone
from capbench.models.feature_norm import norm_layer


def grid_coordinates(h: int, w: int, device: torch.device) -> Tensor:
    """``(h*w, 2)`` cell centres in [0, 1] (row-major, as ``flatten(2)`` orders a map)."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def two_phase_cosine(epoch: int, joint: int, heads: int) -> float:
    """The learning-rate factor of ``epoch``: a cosine from 1 towards 0 over the ``joint``
    epochs, then again from 1 over the ``heads`` head-only ones (as CosineAnnealingLR steps)."""
    e, n = (epoch, joint) if epoch < joint else (epoch - joint, heads)
    return 0.5 * (1.0 + math.cos(math.pi * e / max(1, n)))


def stage_index(trunk: nn.Module, stage: str) -> int:
    """Position of the named top-level ``stage`` in the trunk. Only a trunk that is a sequence of
    stages (the torchvision ResNets) can hand out an inner map from the same pass: it is split
    there (``trunk[: i + 1]``, then ``trunk[i + 1 :]``)."""
    if not isinstance(trunk, nn.Sequential):
        raise ValueError(
            f"model.head_layer {stage!r} needs a trunk that is a sequence of stages (a "
            f"torchvision:: ResNet); this one is a {type(trunk).__name__}"
        )
    names = [n for n, _ in trunk.named_children()]
    if stage not in names:
        raise ValueError(
            f"model.head_layer {stage!r} is not a stage of the trunk; its stages: {names}"
        )
    return names.index(stage)


class TfmHead(nn.Module):
    """Visual tokens + text states through a small transformer encoder."""

    def __init__(self, channels: int, text_dim: int, m: ModelConfig, n_out: int) -> None:
        super().__init__()
        self.visual_norm = norm_layer(m.tfm_visual_norm, channels, "model.tfm_visual_norm")
        self.visual = nn.Linear(channels, m.dim)
        self.text = nn.Linear(text_dim, m.dim)
        self.position = nn.Linear(2, m.dim)  # grid position of a visual token
        self.kind = nn.Embedding(2, m.dim)  # 0 = visual, 1 = text
        layer = nn.TransformerEncoderLayer(
            m.dim, m.tfm_heads, 4 * m.dim, m.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, m.tfm_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(m.dim)
        self.out = nn.Linear(m.dim, n_out)

    def forward(
        self, fmap: Tensor, states: Tensor, attention: Tensor, position: Tensor
    ) -> tuple[Tensor, None]:
        b, _, h, w = fmap.shape
        vis = self.visual(self.visual_norm(fmap.flatten(2)).transpose(1, 2))  # (B, hw, dim)
        vis = vis + self.position(grid_coordinates(h, w, fmap.device)) + self.kind.weight[0]
        txt = self.text(states) + self.kind.weight[1]
        tokens = torch.cat([vis, txt], dim=1)
        pad = torch.cat([torch.zeros(b, h * w, dtype=torch.bool, device=fmap.device),
                         attention == 0], dim=1)  # fmt: skip
        out = self.encoder(tokens, src_key_padding_mask=pad)
        masked = out[torch.arange(b, device=fmap.device), h * w + position]
        return self.out(self.norm(masked)), None


class AttFcHead(nn.Module):
    """The masked token's state attends over the map; fully-connected layers on the result."""

    def __init__(self, channels: int, text_dim: int, m: ModelConfig, n_out: int) -> None:
        super().__init__()
        self.query = nn.Linear(text_dim, m.dim)
        self.key = nn.Conv2d(channels, m.dim, 1)
        # per channel and cell: sized at the first batch (the map's grid follows the image size)
        self.key_norm = nn.LazyBatchNorm1d(affine=False) if m.attfc_key_norm == "position" else None
        self.with_text = m.attfc_text
        self.norm = norm_layer(m.attfc_norm, channels, "model.attfc_norm")
        self.fc = nn.Sequential(
            nn.Linear(channels + (text_dim if m.attfc_text else 0), m.attfc_hidden),
            nn.LayerNorm(m.attfc_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(m.dropout),
            nn.Linear(m.attfc_hidden, n_out),
        )
        self.scale = 1.0 / math.sqrt(m.dim)
        # cosine scores: the log of their learned scale (a parameter only in that mode)
        self.log_scale = (
            nn.Parameter(torch.tensor(math.log(m.attfc_cosine_scale)))
            if m.attfc_scores == "cosine"
            else None
        )

    def forward(
        self, fmap: Tensor, states: Tensor, attention: Tensor, position: Tensor
    ) -> tuple[Tensor, Tensor]:
        b = fmap.shape[0]
        masked = states[torch.arange(b, device=fmap.device), position]  # (B, text_dim)
        q = self.query(masked)  # (B, d)
        keyed = fmap
        if self.key_norm is not None:
            keyed = self.key_norm(fmap.flatten(1)).view_as(fmap)
        k = self.key(keyed).flatten(2)  # (B, d, hw)
        if self.log_scale is None:
            scores = torch.einsum("bd,bdn->bn", q, k) * self.scale
        else:
            cos = torch.einsum("bd,bdn->bn", F.normalize(q, dim=1), F.normalize(k, dim=1))
            scores = cos * self.log_scale.clamp(max=math.log(MAX_COSINE_SCALE)).exp()
        att = torch.softmax(scores, dim=-1)
        attended = self.norm(torch.einsum("bn,bcn->bc", att, fmap.flatten(2)))
        if self.with_text:
            attended = torch.cat([attended, masked.to(attended.dtype)], dim=-1)
        return self.fc(attended), att.reshape(b, *fmap.shape[2:])


class Icmlm(L.LightningModule):
    """ResNet trunk + the mode's head (see the module docstring).

    Args:
        model: trunk, text encoder and heads (the row config's ``model`` section).
        concepts: the concept vocabulary's settings (``concepts``).
        train: mode, loss weights and optimisation (``train``).
        concept_words: the K concepts (from the DataModule); None = read from it at fit.
        categories: the object categories (TP_Label); None = read from the DataModule at fit.
        seed: recorded with the run.
    """

    def __init__(
        self,
        model: ModelConfig = ModelConfig(),
        concepts: ConceptsConfig = ConceptsConfig(),
        train: TrainConfig = TrainConfig(),
        concept_words: list[str] | None = None,
        categories: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = IcmlmConfig(
            model=as_config(ModelConfig, model, "model"),
            concepts=as_config(ConceptsConfig, concepts, "concepts"),
            train=as_config(TrainConfig, train, "train"),
        )
        self.mode = check_mode(self.cfg.train.mode)
        self.seed = int(seed)
        m = self.cfg.model
        weights = m.backbone_weights
        if weights is None and not m.allow_random_init:
            raise ValueError("model.backbone_weights is not set and allow_random_init is false")
        self.trunk, self.channels = create_backbone(m.backbone, weights)
        # the heads' map: the trunk's stages up to here (None: all of them, the last map)
        self.head_stage = None if m.head_layer is None else stage_index(self.trunk, m.head_layer)
        self.head_channels = self.channels
        if self.head_stage is not None:
            with torch.no_grad():  # eval: a one-image batch through BatchNorm
                probe = self.trunk[: self.head_stage + 1].eval()(torch.zeros(1, 3, 64, 64))
            self.trunk.train()
            self.head_channels = int(probe.shape[1])
        self._text: Any = None  # the frozen encoder: not a submodule (not in checkpoints)
        self._head_maps: Tensor | None = None  # the head-only epochs' cached trunk maps
        self.concept_words: list[str] | None = None
        self.categories: list[str] | None = None
        self.save_hyperparameters(
            {**config_dict(self.cfg), "concept_words": None, "categories": None, "seed": seed}
        )
        if concept_words is not None and categories is not None:
            self.build_heads(list(concept_words), list(categories))
        self.provenance: dict[str, Any] = {
            "backbone": m.backbone,
            "backbone_init": f"file:{weights}" if weights else "random",
            "text_encoder": m.text_encoder,
        }

    # ------------------------------------------------------------------ parts
    @property
    def uses_text(self) -> bool:
        return self.mode in ICMLM_MODES

    @property
    def text_encoder(self) -> Any:
        if self._text is None:
            from capbench.methods.icmlm.text import FrozenTextEncoder

            m = self.cfg.model
            self._text = FrozenTextEncoder(
                m.text_encoder, m.text_max_len, m.cache_text_states, m.text_dtype
            )
        self._text.to(self.device)
        return self._text

    def build_heads(self, concept_words: list[str], categories: list[str]) -> None:
        """The heads for K concepts and the categories (saved in hparams for reloading)."""
        self.concept_words, self.categories = concept_words, categories
        self.hparams["concept_words"], self.hparams["categories"] = concept_words, categories
        k, c = len(concept_words), self.channels
        self.head: nn.Module | None = None
        if self.uses_text:
            text_dim = self.text_encoder.dim
            cls = TfmHead if self.mode == "tfm" else AttFcHead
            self.head = cls(self.head_channels, text_dim, self.cfg.model, k)
        with_postag = self.mode == "tp_postag" or (
            self.uses_text and self.cfg.train.tp_postag_weight > 0
        )
        self.postag = nn.Linear(c, k) if with_postag else None
        self.label = nn.Linear(c, len(categories)) if self.mode == "tp_label" else None

    # ------------------------------------------------------------------ forward
    def forward(self, images: Tensor) -> Tensor:
        """The trunk's last feature map ``(B, C, h, w)``."""
        return self.trunk(images)

    def feature_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(the map the ICMLM heads read, the last map) in one trunk pass; the same tensor twice
        unless ``model.head_layer`` names an earlier stage."""
        if self.head_stage is None:
            last = self.trunk(images)
            return last, last
        head = self.trunk[: self.head_stage + 1](images)
        return head, self.trunk[self.head_stage + 1 :](head)

    def head_map(self, images: Tensor) -> Tensor:
        """The map the ICMLM heads read (evaluation: masked-token accuracy, attention maps)."""
        return self.feature_maps(images)[0]

    def predict_concepts(self, batch: dict[str, Any], fmap: Tensor) -> tuple[Tensor, Tensor | None]:
        """(concept logits at each masked caption's masked position, att-fc's attention maps or
        None); a caption reads the map of its image (``mask_image``: several per image)."""
        assert self.head is not None
        if "mask_image" in batch:
            fmap = fmap[batch["mask_image"].to(fmap.device)]
        states = self.text_encoder.encode(batch["input_ids"], batch["attention"])
        return self.head(fmap, states, batch["attention"].to(self.device), batch["position"])

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        if self.concept_words is None:
            raise RuntimeError("Icmlm: heads not built (fit with IcmlmDataModule)")
        head_map, fmap = self.feature_maps(batch["image"])
        out: dict[str, Tensor] = {}
        pooled = fmap.mean(dim=(2, 3))
        if self.uses_text:
            logits, _ = self.predict_concepts(batch, head_map)
            target = batch["target"]
            if (target != IGNORE).any():
                out["mlm"] = F.cross_entropy(logits, target, ignore_index=IGNORE)
                hit = (logits.argmax(-1) == target)[target != IGNORE]
                out["mlm_acc"] = hit.float().mean().detach()
        if self.postag is not None:
            out["postag"] = F.binary_cross_entropy_with_logits(
                self.postag(pooled), batch["postags"]
            )
        if self.label is not None:
            out["label"] = F.binary_cross_entropy_with_logits(self.label(pooled), batch["labels"])
        w = self.cfg.train.tp_postag_weight if self.uses_text else 1.0
        total = out.get("mlm", pooled.sum() * 0.0) + out.get("label", 0.0)
        if "postag" in out:
            total = total + w * out["postag"]
        out["loss"] = total
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if self.in_head_phase:
            return self.head_phase_step(batch)
        if "image" not in batch:
            return empty_batch_loss(self)
        losses = self.losses(batch)
        bs = int(batch["image"].shape[0])
        for k, v in losses.items():
            self.log(f"train/{k}", v, prog_bar=k == "loss", batch_size=bs)
        return losses["loss"]

    # ------------------------------------------------------------------ head-only epochs
    @property
    def in_head_phase(self) -> bool:
        """Whether this epoch trains the ICMLM head alone (``train.head_epochs``, after the
        ``train.max_epochs`` joint ones)."""
        return self._trainer is not None and self.current_epoch >= self.cfg.train.max_epochs

    def on_train_epoch_start(self) -> None:
        """In the head-only epochs: everything but the ICMLM head frozen (BatchNorm statistics
        kept), the batches without images, each image's masked captions drawn from its fixed
        subset (``train.head_examples_per_image``, when set), and the trunk's head maps of every
        training image computed once (again after a resume)."""
        dm = getattr(self.trainer, "datamodule", None)
        if self.cfg.train.head_epochs and dm is not None:
            dm.dataset(TRAIN, train=True).load_images = not self.in_head_phase
            kept = self.cfg.train.head_examples_per_image if self.in_head_phase else 0
            dm.concept_captions(TRAIN).keep_examples(kept, self.seed)
        if not self.in_head_phase:
            return
        assert self.head is not None
        self.requires_grad_(False)
        self.eval()
        self.head.requires_grad_(True)
        self.head.train()
        if self._head_maps is None:
            self._head_maps = self.frozen_head_maps(dm.dataset(TRAIN, train=False))

    def on_fit_end(self) -> None:
        """The DataModule's training images loaded again and every example offered again (a
        later fit on it needs them); the cached maps dropped."""
        self._head_maps = None
        dm = getattr(self.trainer, "datamodule", None)
        if self.cfg.train.head_epochs and dm is not None:
            dm.dataset(TRAIN, train=True).load_images = True
            dm.concept_captions(TRAIN).keep_examples(0)

    def frozen_head_maps(self, images: Dataset) -> Tensor:
        """``(N, C, h, w)`` head maps of an ``images``-view dataset (NaN for an unreadable
        image), in item order."""
        from capbench.methods.frozen_features import frozen_features

        n = len(images)  # type: ignore[arg-type]
        probe = next(it for it in map(images.__getitem__, range(n)) if it is not None)
        shape = self.head_map(probe["image"][None].to(self.device)).shape[1:]
        flat = frozen_features(
            lambda x: self.head_map(x).flatten(1),
            images,
            shape.numel(),
            self.device,
            self.cfg.train.batch_size,
        )
        return flat.view(len(flat), *shape)

    def head_phase_step(self, batch: dict[str, Any]) -> Tensor | None:
        """The masked-concept loss of the head alone on the cached maps; captions of an
        unreadable image are ignored."""
        if "target" not in batch:
            return empty_batch_loss(self)
        assert self._head_maps is not None  # set at the epoch's start
        maps = self._head_maps[batch["index"].to(self._head_maps.device)]
        readable = ~torch.isnan(maps.flatten(1)).any(dim=1)
        target = batch["target"].to(self.device)
        if "mask_image" in batch:
            target = torch.where(readable[batch["mask_image"]], target, IGNORE)
        if (target == IGNORE).all():
            return empty_batch_loss(self)
        logits, _ = self.predict_concepts(batch, torch.nan_to_num(maps))
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        hit = (logits.argmax(-1) == target)[target != IGNORE]
        bs = len(batch["index"])
        self.log("train/head_mlm", loss, prog_bar=True, batch_size=bs)
        self.log("train/head_mlm_acc", hit.float().mean(), batch_size=bs)
        return loss

    def setup(self, stage: str) -> None:
        """Heads sized from the DataModule's concepts and categories when not given."""
        if stage != "fit" or self.concept_words is not None or self._trainer is None:
            return
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "concepts"):
            raise RuntimeError("Icmlm trains from IcmlmDataModule: pass one to Trainer.fit")
        self.build_heads(dm.concepts, dm.categories)
        self.to(self.device)

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        params = [p for p in self.parameters() if p.requires_grad]
        if t.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay
            )
        elif t.optimizer == "adamw":
            # fused: one kernel for all parameters instead of a loop over them (on a CPU about
            # 5x faster for a ResNet-18; the same update up to rounding)
            opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, fused=True)
        else:
            raise ValueError(f"train.optimizer must be sgd or adamw, got {t.optimizer!r}")
        sched: torch.optim.lr_scheduler.LRScheduler
        if t.head_epochs == 0:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, t.max_epochs))
        else:  # a cosine over the joint epochs, then another over the head-only ones
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda e: two_phase_cosine(e, t.max_epochs, t.head_epochs)
            )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["capbench_provenance"] = dict(self.provenance)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.provenance = dict(checkpoint.get("capbench_provenance", self.provenance))
