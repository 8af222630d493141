"""The fixed image side of Reed et al. 2016: 10 training views and one test view per image.

No image network is trained: the paper embeds images with a fixed GoogLeNet (1024 pooling
units), 10 views per training image (centre and 4 corners of the image and of its mirror), the
whole image resized to 224 at test. Two sources give these features:

* ``t7``: the features Reed et al. released, ``cvpr2016_<dataset>/images/<class>.t7`` (N x 1024
  x 10 per class, rows in the class's image order), read by ``capbench.data.sources.torch7``;
* ``backbone``: a trunk from ``capbench.models.backbones`` with global average pooling, on a
  local weights file (the scenes profile: the scenes-pretrained trunk), cached through
  ``capbench.eval.feature_cache`` so each image set is extracted once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from capbench.data.images import (
    CorruptImageError,
    MultiViewTransform,
    build_transform,
    load_rgb,
)
from capbench.data.records import CaptionedImage
from capbench.methods.fine_grained_sje.config import ModelConfig

REED_DIRS = {"cub": "cvpr2016_cub", "flowers": "cvpr2016_flowers"}


class _Images(Dataset):
    def __init__(self, records: Sequence[CaptionedImage], transform: object) -> None:
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Tensor | None:
        """The image's views ``(V, C, H, W)``, or None when the file cannot be decoded: its
        feature row is then NaN (training drops the image, the test set stops on it)."""
        from capbench.data.views import note_corrupt

        record = self.records[i]
        try:
            img = load_rgb(record.image_path)
        except CorruptImageError as err:
            note_corrupt(record, err)
            return None
        out = self.transform(img)  # type: ignore[operator]
        return out if out.dim() == 4 else out.unsqueeze(0)  # (V, C, H, W)


def _fingerprint(records: Sequence[CaptionedImage]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.image_id}\t{r.image_path}\n".encode())
    return h.hexdigest()


@torch.no_grad()
def _extract(
    trunk: torch.nn.Module, records: Sequence[CaptionedImage], transform: object, batch: int
) -> Tensor:
    """``(N, V, D)`` pooled features in record order; an unreadable image's row is NaN."""
    from capbench.data.views import drain_skipped, report_skipped

    trunk.eval()
    parts: list[tuple[list[bool], Tensor | None]] = []  # per batch: readable?, their features
    for items in DataLoader(_Images(records, transform), batch_size=batch, collate_fn=list):
        report_skipped(drain_skipped())
        kept = [x for x in items if x is not None]
        pooled = None
        if kept:
            views = torch.stack(kept)
            b, v = views.shape[:2]
            pooled = trunk(views.flatten(0, 1)).mean(dim=(2, 3)).view(b, v, -1).float()
        parts.append(([x is not None for x in items], pooled))
    shape = next((p.shape[1:] for _, p in parts if p is not None), None)
    if shape is None:
        raise ValueError(f"none of the {len(records)} images could be read for fixed features")
    rows = []
    for ok, pooled in parts:
        block = torch.full((len(ok), *shape), float("nan"))
        if pooled is not None:
            block[torch.tensor(ok)] = pooled
        rows.append(block)
    return torch.cat(rows)


def backbone_features(
    cfg: ModelConfig,
    weights: str | None,
    records: Sequence[CaptionedImage],
    train: bool,
    batch_size: int,
    seed: int = 0,
) -> Tensor:
    """``(N, V, D)`` pooled trunk features: ``cfg.views`` crops when ``train``, else one view
    (the whole image resized to ``cfg.crop``). A random trunk (``allow_random_init``) is drawn
    from ``seed``, so that every call sees the same one."""
    from capbench.eval.feature_cache import file_sha256, get_or_compute
    from capbench.models.backbones import create_backbone

    if cfg.backbone is None:
        raise ValueError("model.backbone is not set: image_source 'backbone' needs a trunk name")
    if train:
        transform: object = MultiViewTransform(cfg.crop, views=cfg.views, shorter_side=cfg.resize)
        prep = f"views={cfg.views} shorter={cfg.resize} crop={cfg.crop}"
    else:
        transform = build_transform(longest_side=cfg.crop, pad_to_square=True)
        prep = f"test whole image, longest={cfg.crop} padded square"

    def compute() -> Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            trunk, _ = create_backbone(cfg.backbone, weights)  # type: ignore[arg-type]
        return _extract(trunk, records, transform, batch_size)

    key = {
        "checkpoint": file_sha256(weights) if weights else f"random-init seed={seed}",
        "preprocessing": f"{cfg.backbone} avgpool; {prep}",
        "split": "train" if train else "test",
        "data_fingerprint": _fingerprint(records),
    }
    return get_or_compute(key, compute)


def t7_features(
    root: Path, dataset: str, records: Sequence[CaptionedImage], train: bool, views: int
) -> Tensor:
    """``(N, V, 1024)`` from Reed's ``images/<class>.t7``: all ``views`` for training, view 0 at
    test (our reading: the first view is the centre crop; the release does not say)."""
    from capbench.data.errors import DatasetFormatError
    from capbench.data.sources.torch7 import read_image_features

    folder = _reed_dir(root, dataset) / "images"
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        name = str((r.meta or {}).get("class_name", ""))
        if not name:
            raise ValueError(f"record {r.image_id}: no meta['class_name'] to find its .t7 file")
        by_class.setdefault(name, []).append(i)
    feats = read_image_features(folder, sorted(by_class))
    out = torch.empty(len(records), views if train else 1, next(iter(feats.values())).shape[1])
    for name, rows in by_class.items():
        block = feats[name]  # (n, 1024, 10), rows in the class's image order
        if block.shape[0] != len(rows):
            raise DatasetFormatError(
                folder / f"{name}.t7",
                f"expected {len(rows)} images (the class's records), found {block.shape[0]}",
                name,
            )
        chosen = block[:, :, :views] if train else block[:, :, :1]
        out[rows] = chosen.permute(0, 2, 1)
    return out


def _reed_dir(root: Path, dataset: str) -> Path:
    name = REED_DIRS.get(dataset)
    if name is None:
        raise ValueError(f"image_source 't7' reads cub or flowers, not {dataset!r}")
    for base in (root, root.parent):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"{root}: no {name}/ folder with Reed's images/<class>.t7 features")
