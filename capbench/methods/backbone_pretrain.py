"""The scenes profile's stand-in for "pretrained on ImageNet": a trunk trained on multi-label
object classes (BCE) of labelled images that are disjoint from the retrieval splits.

The paper's models start from an ImageNet ResNet-101; nothing can be downloaded here, and a
randomly initialised trunk would make the "visual baseline" meaningless. So capbench pretrains
the scenes backbone on the scenes object labels alone (read through the ``voc2007`` reader, the
layout ``capbench data scenes`` writes under ``scenes_pretrain/``, images disjoint from the
Visual Genome style splits), then every Gordo row starts from that trunk exactly as
the paper's start from ImageNet.

Like ImageNet's, those images are object-centric: one object fills most of each. On scenes with
several small objects and image-level labels, a ResNet trained from scratch for the few hundred
updates a CPU budget allows learns the colours and backgrounds and leaves the shapes at chance
(held-out shape AP 0.23-0.41, prior 0.27); on close-ups it learns them (held-out mAP 0.76).
The retrieval descriptors of cluttered scenes still carry them only weakly (a linear probe:
mAP 0.345 against a prior of 0.267; benchmarks/gordo2017/README.md). The result is cached under
``cache_root()/backbones/<arch>-<fingerprint>.pt`` (the fingerprint hashes the labelled records,
their image file sizes and every training option), written atomically; a second call returns the
path without training. Held-out mAP goes to a ``.json`` file beside it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from capbench.atomic import atomic_path, atomic_write_text
from capbench.data.records import CaptionedImage
from capbench.models.backbones import create_backbone

log = logging.getLogger(__name__)


class LabelledImages(Dataset):
    """``{"image": tensor, "target": multi-hot float (n_classes,)}`` of VOC-style records; None
    for a corrupt image, which ``collate_skip_none`` drops and the loader counts."""

    def __init__(self, records: Sequence[CaptionedImage], n_classes: int, transform: Any) -> None:
        self.records = list(records)
        self.n_classes = n_classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Tensor] | None:
        from capbench.data.views import load_image_or_none

        rec = self.records[i]
        image = load_image_or_none(rec, self.transform)
        if image is None:
            return None
        target = torch.zeros(self.n_classes)
        target[list(rec.labels)] = 1.0
        return {"image": image, "target": target}


class BackbonePretrainer(L.LightningModule):
    """Trunk + global average pooling + linear head, trained with BCE on multi-labels."""

    def __init__(
        self,
        arch: str = "timm::resnet18",
        n_classes: int = 20,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 10,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.trunk, channels = create_backbone(arch)
        self.head = nn.Linear(channels, n_classes)
        from torchmetrics.classification import MultilabelAveragePrecision

        # Per class, and the mAP is their mean: a mAP alone can hide that one label group (on
        # scenes, the colours) carries it while another (the shapes) stays at chance.
        self.val_ap = MultilabelAveragePrecision(num_labels=n_classes, average=None)
        self.val_ap_per_class: list[float] = []
        # held-out positives per class: torchmetrics 1.9 scores a class without any as AP -0.0
        # (recall set to one, with a warning), which would pull the mAP down as a zero
        self.register_buffer("val_positives", torch.zeros(n_classes), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.trunk(images).mean(dim=(2, 3)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        if "image" not in batch:  # every image of the batch was corrupt: no step
            return None
        loss = F.binary_cross_entropy_with_logits(self(batch["image"]), batch["target"])
        self.log("train/bce", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if "image" not in batch:
            return
        self.val_ap.update(torch.sigmoid(self(batch["image"])), batch["target"].long())
        self.val_positives += batch["target"].sum(dim=0)

    def on_validation_epoch_end(self) -> None:
        with warnings.catch_warnings():  # the classes it warns about are set to NaN below
            warnings.filterwarnings("ignore", message="No positive samples found in target")
            per_class = self.val_ap.compute().float()
        per_class[self.val_positives == 0] = float("nan")
        self.val_ap.reset()
        self.val_positives.zero_()
        self.val_ap_per_class = [float(x) for x in per_class.tolist()]
        # macro mAP over the classes that have held-out positives
        self.log("val/mAP", per_class.nanmean(), prog_bar=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        # One cycle per step: a warm-up, then annealing. Without the warm-up, Adam at this step
        # size from random init spends the few hundred updates a CPU budget allows on the easy
        # cues, and the shapes stay at chance.
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=max(1, self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _fingerprint(records: Sequence[CaptionedImage], options: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for r in sorted(records, key=lambda r: (r.split, r.image_id)):
        size = os.path.getsize(r.image_path) if os.path.exists(r.image_path) else -1
        h.update(f"{r.split}\t{r.image_id}\t{sorted(r.labels)}\t{size}\n".encode())
    return h.hexdigest()[:16]


def default_data_root() -> Path:
    from capbench.paths import scenes_root

    return scenes_root() / "scenes_pretrain"


def cached_path(arch: str, fingerprint: str) -> Path:
    from capbench.paths import cache_root

    return (
        cache_root() / "backbones" / f"{arch.replace('::', '-').replace('/', '_')}-{fingerprint}.pt"
    )


# The scenes profile. ``capbench pretrain-backbone --profile scenes`` and the Gordo rows'
# ``backbone_weights: scenes-pretrain`` both call ``pretrain_backbone`` with these defaults, so
# they share one cached file (the cache key hashes every option).
# The scenes pretraining images are one-object close-ups (96 px); at 32 px their object has the
# pixel size the retrieval images' objects have at 96 px, and 6 epochs of the demo's 4,800
# images are 900 updates: about where the shapes are learned (held-out mAP 0.76), in ~100 s.
SCENES_PROFILE: dict[str, Any] = {
    "arch": "timm::resnet18",
    "epochs": 6,
    "image_size": 32,
    "batch_size": 32,
    "lr": 3e-3,
}


def pretrain_backbone(
    data: str | Path | None = None,
    arch: str = SCENES_PROFILE["arch"],
    epochs: int = SCENES_PROFILE["epochs"],
    out: str | Path | None = None,
    image_size: int = SCENES_PROFILE["image_size"],
    batch_size: int = SCENES_PROFILE["batch_size"],
    lr: float = SCENES_PROFILE["lr"],
    weight_decay: float = 1e-4,
    seed: int = 0,
    train_split: str = "train",
    eval_split: str = "val",
    num_workers: int = 0,
    accelerator: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train (or find cached) the scenes backbone; returns the trunk state-dict file."""
    from capbench.cache_entry import json_object, read_cached
    from capbench.file_lock import job_lock
    from capbench.models.backbones import read_state_dict

    root, train, held_out, classes, options = _pretrain_plan(
        data, arch, epochs, image_size, batch_size, lr, weight_decay, seed, train_split, eval_split
    )
    target = (
        Path(out)
        if out is not None
        else cached_path(arch, _fingerprint([*train, *held_out], options))
    )
    info = target.with_suffix(".json")

    def cached() -> bool:  # mapped, not read: the row loads the trunk itself right after
        files = (target, info)
        return read_cached(files, lambda: (read_state_dict(target, mmap=True), json_object(info)))

    if cached():
        log.info("cached scenes backbone: %s", target)
        return target
    # one process pretrains it; another one (a second terminal, a SLURM job beside this one)
    # waits, then reads it, instead of training its own copy and replacing this one's
    with job_lock(target.with_suffix(".lock"), f"pretraining the scenes trunk {target}"):
        if cached():
            log.info("cached scenes backbone, trained while this process waited: %s", target)
            return target
        _pretrain(
            target, root, train, held_out, classes, options, num_workers, accelerator, progress
        )
    return target


def _pretrain(
    target: Path,
    root: Path,
    train: Sequence[CaptionedImage],
    held_out: Sequence[CaptionedImage],
    classes: list[str] | None,
    options: dict[str, Any],
    num_workers: int,
    accelerator: str,
    progress: bool,
) -> None:
    """Train the trunk ``options`` describe and write it, with its info beside it, to
    ``target`` (both atomically)."""
    from capbench.data.datamodule import CountingDataLoader
    from capbench.data.images import build_transform
    from capbench.data.views import collate_skip_none, skipped_mark, skipped_since
    from capbench.methods.training import keep_random_streams

    n_classes, seed, arch = options["n_classes"], options["seed"], options["arch"]
    image_size, batch_size = options["image_size"], options["batch_size"]
    lr, weight_decay, epochs = options["lr"], options["weight_decay"], options["epochs"]

    # training reseeds and draws; the caller's streams are put back, so a row that pretrains its
    # trunk on a cold cache starts from the same random weights as on a warm one
    with keep_random_streams():
        L.seed_everything(seed, workers=True, verbose=False)
        t_train = build_transform(longest_side=image_size, pad_to_square=True, hflip=True)
        t_eval = build_transform(longest_side=image_size, pad_to_square=True)
        mark = skipped_mark()  # the loaders drop corrupt images from their batch and report them
        loaders = [
            CountingDataLoader(
                LabelledImages(recs, n_classes, t),
                batch_size=batch_size,
                shuffle=shuffle,
                num_workers=num_workers,
                collate_fn=collate_skip_none,
            )
            for recs, t, shuffle in ((train, t_train, True), (held_out, t_eval, False))
        ]
        model = BackbonePretrainer(arch, n_classes, lr=lr, weight_decay=weight_decay, epochs=epochs)
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, loaders[0])
        held_map = float(trainer.validate(model, loaders[1], verbose=False)[0]["val/mAP"])

        with atomic_path(target, suffix=".pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.trunk.state_dict().items()}, tmp)
        info = {
            **options,
            "data": str(root),
            "held_out_mAP": held_map,
            "held_out_AP": {
                name: None if math.isnan(ap) else round(ap, 4)  # None: no held-out positive
                for name, ap in zip(classes or map(str, range(n_classes)), model.val_ap_per_class)
            },
            "n_train": len(train),
            "n_held_out": len(held_out),
            "skipped_images": skipped_since(mark),  # corrupt files, each named once
            "classes": classes,
        }
        atomic_write_text(target.with_suffix(".json"), json.dumps(info, indent=2))
    log.info("scenes backbone %s: held-out mAP %.3f", target, held_map)


# the options of pretrain_backbone that decide what it trains (the others: where and how it runs)
_KEYED = ("data", "arch", "epochs", "image_size", "batch_size", "lr", "weight_decay", "seed",
          "train_split", "eval_split")  # fmt: skip


def scenes_backbone_file(**opts: Any) -> Path:
    """The cached file ``pretrain_backbone(**opts)`` finds or writes, without training: a model
    trained from that trunk puts its name (options and data fingerprint, with the version ``v``)
    in its own cache key, so a retrained trunk is never paired with models of the old one."""
    bound = inspect.signature(pretrain_backbone).bind(**{k: opts[k] for k in _KEYED if k in opts})
    bound.apply_defaults()  # pretrain_backbone's own defaults: one source for both
    kw = {k: bound.arguments[k] for k in _KEYED}
    _, train, held_out, _, options = _pretrain_plan(**kw)
    return cached_path(kw["arch"], _fingerprint([*train, *held_out], options))


def _pretrain_plan(
    data: str | Path | None, arch: str, epochs: int, image_size: int, batch_size: int, lr: float,
    weight_decay: float, seed: int, train_split: str, eval_split: str,
) -> tuple[Path, list[CaptionedImage], list[CaptionedImage], list[str], dict[str, Any]]:  # fmt: skip
    """The labelled records, their class names and the options the cache key hashes."""
    from capbench.data import read

    root = Path(data) if data is not None else default_data_root()
    if not root.exists():
        raise FileNotFoundError(
            f"{root}: no labelled images for backbone pretraining (a VOC 2007 layout; "
            "generate the scenes dataset with `capbench data scenes` or pass --data DIR)"
        )
    train = read("voc2007", root, train_split)
    held_out = read("voc2007", root, eval_split)
    classes = list((train[0].meta or {}).get("classes") or [])
    n_classes = len(classes) or 1 + max(max(r.labels, default=0) for r in train)
    options = {
        "v": 2, "arch": arch, "epochs": epochs, "image_size": image_size, "batch_size": batch_size,
        "lr": lr, "weight_decay": weight_decay, "seed": seed, "train_split": train_split,
        "eval_split": eval_split, "n_classes": n_classes,
    }  # fmt: skip
    return root, train, held_out, classes, options


def pretrain_info(path: str | Path) -> dict[str, Any]:
    """The options and held-out mAP recorded beside a pretrained trunk."""
    return json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
