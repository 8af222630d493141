"""Per-image feature vectors of a graded benchmark: stored, loaded and extracted.

A feature set is a ``.npz`` with ``ids`` (image ids) and ``features`` (N, D), written atomically.
Extraction runs a frozen function of an image batch (the untuned CNN, FIC, BoRD) over records;
``"thumbnail"`` (an 8 x 8 RGB thumbnail, 192-d) needs no model: the registry-wide tests train
the fusion on it, and it is the floor a learned feature must clear.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from capbench.atomic import atomic_path
from capbench.data.records import CaptionedImage

THUMBNAIL = "thumbnail"


def save_features(path: str | Path, ids: Sequence[str], features: np.ndarray) -> Path:
    """Write ``ids`` and their ``(N, D)`` float32 vectors to ``path`` (``.npz``) atomically."""
    if len(ids) != len(features):
        raise ValueError(f"{len(ids)} ids but {len(features)} feature rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, ids=np.asarray(list(ids), dtype=str), features=features.astype(np.float32))
    return path


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """``{image id: vector}`` from a feature file (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature file not found")
    with np.load(path) as data:
        if "ids" not in data or "features" not in data:
            raise ValueError(f"{path}: expected arrays 'ids' and 'features', got {list(data)}")
        ids, feats = data["ids"], data["features"]
    if len(ids) != len(feats):
        raise ValueError(f"{path}: {len(ids)} ids but {len(feats)} feature rows")
    return {str(i): f for i, f in zip(ids, feats)}


def thumbnail_features(records: Sequence[CaptionedImage], side: int = 8) -> dict[str, np.ndarray]:
    """Each image shrunk to ``side`` x ``side`` RGB, flattened (values in [0, 1])."""
    from PIL import Image

    from capbench.data.images import load_rgb

    out = {}
    for r in records:
        img = load_rgb(r.image_path).resize((side, side), Image.Resampling.BOX)
        out[r.image_id] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
    return out


def resolve_features(
    spec: str | Path | Mapping[str, np.ndarray], records: Sequence[CaptionedImage]
) -> Mapping[str, np.ndarray]:
    """A ready mapping, ``"thumbnail"``, or a feature file path."""
    if isinstance(spec, Mapping):
        return spec
    if str(spec) == THUMBNAIL:
        return thumbnail_features(records)
    return load_features(spec)


def extract(
    records: Sequence[CaptionedImage],
    embed: Callable[[list[Tensor]], Tensor],
    longest_side: int,
    pad_to_square: bool,
    batch_size: int = 16,
) -> np.ndarray:
    """``embed`` (a function of a list of image tensors) over ``records``' images in order,
    without gradients, ``(N, D)``; an unreadable image is an error naming its record."""
    from capbench.data.datamodule import record_images

    images = record_images(records, longest_side, pad_to_square)
    rows: list[Tensor] = []
    batch: list[Tensor] = []
    with torch.no_grad():
        for i in range(len(images)):
            item = images[i]
            if item is None:
                raise ValueError(f"record {records[i].image_id}: unreadable image {records[i]}")
            batch.append(item["image"])
            if len(batch) == batch_size or i == len(images) - 1:
                rows.append(embed(batch).float().cpu())
                batch = []
    return torch.cat(rows).numpy() if rows else np.zeros((0, 0), np.float32)
