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
    desc: str = "extract",
    progress: bool = False,
    shared: bool = True,
) -> np.ndarray:
    """``embed`` (a function of a list of image tensors) over ``records``' images in order,
    without gradients, ``(N, D)``; an unreadable image is an error naming its record.

    ``shared`` (the default) goes through :func:`capbench.eval.extract.embed_in_order`: in a DDP
    run each rank embeds its own share of the images and every rank gets all rows, each image
    embedded once in the job (every rank must call it). ``shared=False`` embeds every image in
    this process, with no collective: for work one rank does alone (rank 0's scoring) or whose
    ``embed`` keeps per-image state on the side (generated captions)."""
    from capbench.data.datamodule import record_images
    from capbench.eval.extract import embed_in_order

    if not records:
        return np.zeros((0, 0), np.float32)
    images = record_images(records, longest_side, pad_to_square)

    def encode(idx: Sequence[int]) -> Tensor:
        batch = []
        for i in idx:
            item = images[i]
            if item is None:  # the messages of why, noted by the dataset
                from capbench.data.views import drain_skipped

                record = records[i]
                why = "; ".join(drain_skipped()) or f"record {record.image_id}: {record.image_path}"
                raise ValueError(f"unreadable image: {why}")
            batch.append(item["image"])
        return embed(batch).float().cpu()

    with torch.no_grad():
        if shared:
            rows = embed_in_order(encode, len(records), batch_size, desc=desc, progress=progress)
        else:
            n = len(records)
            rows = torch.cat(
                [encode(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
            )
    return rows.numpy()
