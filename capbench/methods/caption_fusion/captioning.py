"""Training and loading the two captioners as LightningModules (``capbench.models.captioners``
holds the networks): Show-and-Tell on COCO captions (the FIC feature) and the region captioner
on Visual Genome region phrases (the BoRD feature).

Both save their vocabulary (the token list) and config sections as hyperparameters, so a
checkpoint alone rebuilds the model (``load_captioner``) for features, ``capbench caption`` and
other rows (e.g. Gordo's "generated captions"). Training resumes exactly
(``capbench.methods.training.fit_resumable``) and caches per config in its workdir.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from capbench.data.records import CaptionedImage
from capbench.data.text import WordVocab
from capbench.methods.caption_fusion.config import (
    OPTIMIZERS,
    RegionCaptionerConfig,
    ShowAndTellConfig,
    reads_cached_trunk,
)
from capbench.methods.config import as_config, config_dict
from capbench.methods.empty_batch import empty_batch_loss
from capbench.methods.frozen_features import FrozenMapItems, frozen_features, usable_rows
from capbench.methods.training import (
    finished_checkpoint,
    fit_resumable,
    load_trained,
    resolve_backbone_weights,
)
from capbench.models.captioners.region_captioner import (
    RegionCaptioner,
    RegionSettings,
    weighted_loss,
)
from capbench.models.captioners.show_and_tell import ShowAndTell
from capbench.models.captioners.vocab import build_vocab, decode, special_ids


def _optimizer(params: Any, name: str, lr: float) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _freeze(trunk: torch.nn.Module) -> None:
    """A frozen trunk: no gradients, and BatchNorm statistics kept (eval mode)."""
    trunk.requires_grad_(False)
    trunk.eval()


class _CaptionerBase(L.LightningModule):
    """What both captioners share: the vocabulary, a frozen-or-trained trunk, the optimizer."""

    net: Any
    cfg: Any

    def __init__(self, cfg: Any, vocab: Sequence[str], pretrain: dict[str, Any] | None) -> None:
        """Config, vocabulary and hyperparameters (so a checkpoint alone rebuilds the model),
        then the network on the resolved trunk weights, its trunk frozen unless trained."""
        super().__init__()
        self.cfg = cfg
        self.vocab = WordVocab(list(vocab))
        self.save_hyperparameters(
            {"model": config_dict(cfg), "vocab": list(vocab), "pretrain": pretrain or {}}
        )
        weights = resolve_backbone_weights(
            cfg.backbone, cfg.backbone_weights, cfg.allow_random_init, pretrain
        )
        self.net = self.build_net(self.vocab, weights)
        if not cfg.train_trunk:
            _freeze(self.net.trunk)

    def build_net(self, vocabulary: WordVocab, weights: str | None) -> Any:
        raise NotImplementedError

    def uses_cached_features(self) -> bool:
        """Whether training reads the frozen trunk's output computed once before the fit
        (Show-and-Tell: pooled features; the region captioner: whole maps)."""
        return reads_cached_trunk(self.cfg)

    def on_train_epoch_start(self) -> None:
        if not self.cfg.train_trunk:
            self.net.trunk.eval()  # Lightning sets train mode each epoch: keep BN frozen

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return _optimizer(params, self.cfg.optimizer, self.cfg.lr)

    def words(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [decode(self.vocab, seq) for seq in ids]


class ShowAndTellModule(_CaptionerBase):
    """Show-and-Tell trained with teacher forcing on (image, caption) batches of the ``pairs``
    view; ``fic`` gives the FIC feature and ``caption`` beam-searched captions."""

    def __init__(
        self,
        model: ShowAndTellConfig = ShowAndTellConfig(),
        vocab: Sequence[str] = (),
        pretrain: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(as_config(ShowAndTellConfig, model, "show_and_tell"), vocab, pretrain)

    def build_net(self, vocabulary: WordVocab, weights: str | None) -> ShowAndTell:
        c = self.cfg
        return ShowAndTell(
            c.backbone,
            len(vocabulary),
            special_ids(vocabulary),
            c.dim,
            c.dropout,
            weights,
            stride=c.stride,
            feature_norm=c.feature_norm,
        )

    def on_fit_start(self) -> None:
        """The frozen trunk's pooled features of every training image (their batches then
        carry no image, only its ``index``); see ``capbench.methods.frozen_features``."""
        self._pooled: Tensor | None = None
        if not self.uses_cached_features():
            return
        from capbench.data.views import ImagesDataset

        dm = self.trainer.datamodule  # type: ignore[attr-defined]
        images = ImagesDataset(dm.records("train"), dm.transform(train=False))
        channels = self.net.embed_image.in_features
        self._pooled = frozen_features(
            self.net.pooled, images, channels, self.device, self.cfg.batch_size
        )

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        tokens = batch["tokens"]
        pooled = getattr(self, "_pooled", None)
        if pooled is None:
            loss = self.net.loss(batch["image"], tokens)
        else:
            feats, keep = usable_rows(pooled, batch["index"])  # unreadable images dropped
            loss = self.net.loss_from_pooled(feats, tokens[keep])
        self.log("train/caption_loss", loss, prog_bar=True, batch_size=len(tokens))
        return loss

    @torch.no_grad()
    def fic(self, images: Tensor) -> Tensor:
        return self.net.fic(images)

    @torch.no_grad()
    def caption(self, images: Tensor) -> list[str]:
        return self.words(self.net.caption(images, self.cfg.beam_size, self.cfg.max_len))


class RegionCaptionerModule(_CaptionerBase):
    """The DenseCap-style model trained on region-phrase batches; ``bord`` gives the BoRD
    feature and ``describe`` the top regions with their phrases."""

    def __init__(
        self,
        model: RegionCaptionerConfig = RegionCaptionerConfig(),
        vocab: Sequence[str] = (),
        pretrain: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            as_config(RegionCaptionerConfig, model, "region_captioner"), vocab, pretrain
        )

    def build_net(self, vocabulary: WordVocab, weights: str | None) -> RegionCaptioner:
        c = self.cfg
        # every detection setting is a config field of the same name (lists from YAML: tuples)
        values = {f.name: getattr(c, f.name) for f in fields(RegionSettings)}
        settings = RegionSettings(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        )
        return RegionCaptioner(
            c.backbone,
            len(vocabulary),
            special_ids(vocabulary),
            settings,
            c.dim,
            c.dropout,
            c.stride,
            weights,
        )

    @staticmethod
    def image_list(images: Tensor, sizes: Sequence[tuple[int, int]] | None = None) -> Any:
        from torchvision.models.detection.image_list import ImageList

        if sizes is None:
            sizes = [(int(images.shape[2]), int(images.shape[3]))] * len(images)
        return ImageList(images, [tuple(s) for s in sizes])

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor | None:
        sizes = batch["image_sizes"]
        if not sizes:  # every image of the batch was corrupt (named by the loader)
            return empty_batch_loss(self)
        if "features" in batch:  # the frozen trunk's cached maps (region_dataloader)
            maps = batch["features"]
            height, width = max(s[0] for s in sizes), max(s[1] for s in sizes)
            images = self.image_list(maps.new_empty(len(sizes), 0, height, width), sizes)
            losses = self.net.loss_from_features(maps, images, batch["boxes"], batch["tokens"])
        else:
            images = self.image_list(batch["image"], sizes)
            losses = self.net.loss(images, batch["boxes"], batch["tokens"])
        loss = weighted_loss(losses, self.cfg.loss_weights)
        n = len(batch["boxes"])
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=n)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss  # type: ignore[return-value]

    @torch.no_grad()
    def bord(self, images: Tensor, sizes: Sequence[tuple[int, int]] | None = None) -> Tensor:
        return self.net.bord(self.image_list(images, sizes))

    @torch.no_grad()
    def describe(
        self, images: Tensor, sizes: Sequence[tuple[int, int]] | None = None, top: int = 5
    ) -> list[list[tuple[list[float], float, str]]]:
        """Per image: ``(box x1y1x2y2, score, phrase)`` of its ``top`` regions, best first."""
        out = []
        described = self.net.describe(
            self.image_list(images, sizes), top, self.cfg.beam_size, self.cfg.max_len
        )
        for regions, ids in described:
            phrases = self.words(ids)
            out.append(
                [
                    (box.tolist(), float(score), phrase)
                    for box, score, phrase in zip(regions.boxes, regions.scores, phrases)
                ]
            )
        return out


CAPTIONERS: dict[str, type[_CaptionerBase]] = {
    "show_and_tell": ShowAndTellModule,
    "region_captioner": RegionCaptionerModule,
}


def load_captioner(path: str | Path, map_location: str = "cpu") -> Any:
    """A trained captioner (either kind, told by its hyperparameters) in eval mode; the trunk's
    weights file is not re-read (the checkpoint holds the weights)."""
    from capbench.methods.checkpoint_kind import read_checkpoint

    model = read_checkpoint(path)["hyper_parameters"]["model"]
    kind = "region_captioner" if "anchor_sizes" in model else "show_and_tell"
    return load_trained(CAPTIONERS[kind], path, map_location, "a captioner (mopuri2017)").eval()


def show_and_tell_datamodule(
    cfg: ShowAndTellConfig, train: Sequence[CaptionedImage], vocab: WordVocab, seed: int = 0
) -> Any:
    """The ``pairs`` view of ``train`` (one random caption per image per epoch)."""
    from capbench.data.datamodule import CaptionDataModule

    return CaptionDataModule(
        "records",
        ".",
        view="pairs",
        batch_size=cfg.batch_size,
        longest_side=cfg.image_size,
        pad_to_square=True,
        augment=False,
        tokenizer=vocab,
        max_len=cfg.max_len,
        records={"train": list(train)},
        val_split=None,
        test_split=None,
        seed=seed,
        # cached frozen-trunk features: the batches need only the text and the image's index
        load_train_images=not reads_cached_trunk(cfg),
    )


def region_dataloader(
    cfg: RegionCaptionerConfig,
    train: Sequence[CaptionedImage],
    vocab: WordVocab,
    trunk: torch.nn.Module | None = None,
) -> DataLoader:
    """Shuffled batches of images with their region boxes and phrases; given the frozen
    ``trunk`` (``cache_trunk_features``), its maps of every image are computed once, here, and
    the batches carry them instead of the images."""
    from capbench.data.datamodule import CountingDataLoader
    from capbench.data.region_phrases import RegionPhrases, collate_regions

    dataset: Any = RegionPhrases(train, vocab, cfg.image_size, cfg.max_len)
    if trunk is not None:
        dataset = FrozenMapItems(dataset, trunk, batch_size=32)
    # a corrupt image is dropped from its batch and logged once (CountingDataLoader)
    return CountingDataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate_regions
    )


def train_captioner(
    kind: str,
    cfg: ShowAndTellConfig | RegionCaptionerConfig,
    train: Sequence[CaptionedImage],
    workdir: str | Path,
    pretrain: dict[str, Any] | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[Any, Path]:
    """Fit a captioner (``"show_and_tell"`` on captions, ``"region_captioner"`` on regions) in
    ``workdir`` (resumed exactly; a finished run is loaded). The vocabulary is built from the
    training text with ``cfg.min_count``."""
    finished = finished_checkpoint(workdir)
    if finished is not None:
        return load_captioner(finished), finished
    L.seed_everything(seed, workers=True, verbose=False)
    if kind == "show_and_tell":
        texts = [c for r in train for c in r.captions]
    elif kind == "region_captioner":
        texts = [reg.phrase for r in train for reg in r.regions]
    else:
        raise ValueError(f"unknown captioner {kind!r}; known: {', '.join(CAPTIONERS)}")
    if not texts:
        raise ValueError(f"{kind}: the training records hold no text to learn from")
    vocab = build_vocab(texts, cfg.min_count)
    module = CAPTIONERS[kind](model=cfg, vocab=vocab.itos, pretrain=pretrain)
    if kind == "show_and_tell":
        data: L.LightningDataModule = show_and_tell_datamodule(cfg, train, vocab, seed)  # type: ignore[arg-type]
    else:
        trunk = module.net.trunk if module.uses_cached_features() else None
        data = _LoaderModule(region_dataloader(cfg, train, vocab, trunk))  # type: ignore[arg-type]
    last = fit_resumable(
        module,
        data,
        workdir,
        max_epochs=cfg.epochs,
        precision=cfg.precision,
        loggers=False,
        accelerator=accelerator,
        devices=devices,
        progress=progress,
        callbacks=callbacks,
        gradient_clip_val=cfg.clip or None,
    )
    return module.eval(), last


class _LoaderModule(L.LightningDataModule):
    """A DataModule around one training DataLoader (``fit_resumable`` takes a DataModule)."""

    def __init__(self, loader: DataLoader) -> None:
        super().__init__()
        self.loader = loader

    def train_dataloader(self) -> DataLoader:
        return self.loader


def generate_captions(
    module: Any, records: Sequence[CaptionedImage], batch_size: int = 16
) -> dict[str, str]:
    """Each record's generated text: Show-and-Tell's beam-searched caption, or the region
    captioner's phrase for its top-scoring region (the images at the model's own size)."""
    from capbench.data.region_phrases import pad_images
    from capbench.methods.caption_fusion.features import extract

    regions = isinstance(module, RegionCaptionerModule)
    device = getattr(module, "device", "cpu")  # a LightningModule's; anything else runs on the CPU
    texts: list[str] = []

    def run(images: list[Tensor]) -> Tensor:
        if regions:
            padded, sizes = pad_images(images)
            described = module.describe(padded.to(device), sizes, top=1)
            texts.extend(d[0][2] if d else "" for d in described)
        else:
            texts.extend(module.caption(torch.stack(images).to(device)))
        return torch.zeros(len(images), 1)

    # in this process, in order: ``run`` appends each batch's texts as it goes
    extract(records, run, module.cfg.image_size, not regions, batch_size, shared=False)
    return {r.image_id: t for r, t in zip(records, texts)}


def caption_quality(
    module: Any,
    held_out: Sequence[CaptionedImage],
    train: Sequence[CaptionedImage],
    seed: int = 0,
    meteor: bool = False,
) -> dict[str, float]:
    """BLEU / CIDEr of the generated text of ``held_out`` images against their references (the
    captions, or the region phrases for the region captioner), beside the same scores of a
    caption of a random training image (``random_*``), and ``n_distinct``, how many different
    texts it generated (1: it ignores the image)."""
    from capbench.eval.captioning import caption_scores, random_caption_baseline

    regions = isinstance(module, RegionCaptionerModule)

    def refs(r: CaptionedImage) -> list[str]:
        return [g.phrase for g in r.regions] if regions else list(r.captions)

    held = [r for r in held_out if refs(r)]
    references = {r.image_id: refs(r) for r in held}
    generated = generate_captions(module, held)
    scores = caption_scores(references, generated, meteor=meteor)
    baseline = random_caption_baseline([refs(r) for r in train], list(references), seed)
    scores.update({f"random_{k}": v for k, v in caption_scores(references, baseline).items()})
    scores["n_images"] = float(len(held))
    # a captioner that ignores the image says one thing of every image and can still beat a
    # random training caption on BLEU (the commonest phrasing): count what it actually says
    scores["n_distinct"] = float(len(set(generated.values())))
    return scores
