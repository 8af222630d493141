"""Write records as Oxford Flowers-102 + Reed's ``cvpr2016_flowers`` (inverse of ``sources/flowers.py``).

Record fields used: ``label`` (0-based class), ``split`` (zero-shot class split: train/val/test or
trainval/test), ``captions`` (exactly 10). ``meta["image_split"]`` ("trn"/"val"/"tst", default
cycling trn, val, tst) goes to ``setid.mat``. Images are numbered in item order, so ``image_id``
becomes ``image_%05d``. Flowers has numbered classes only: the class folder is always
``class_%05d`` of ``label + 1`` and ``meta["class_name"]`` is not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io

from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, savemat_deterministic, write_lines
from capbench.data.writers.cub import check_captions, class_names_and_splits, write_class_splits

SETID_KEYS = {"trn": "trnid", "val": "valid", "tst": "tstid"}


def row_vector(values: Sequence[int]) -> np.ndarray:
    """1xN like the original .mat files (scipy's squeeze_me turns it back into a vector)."""
    return np.asarray(list(values), dtype=np.int32).reshape(1, -1)


@WRITERS.register("flowers")
def write_flowers(
    out: Path, items: Sequence[WritableImage], *, captions_per_image: int = 10
) -> Path:
    """Write ``jpg/``, ``imagelabels.mat``, ``setid.mat`` and ``cvpr2016_flowers/``; returns ``out``."""
    out = Path(out)
    reed = out / "cvpr2016_flowers"
    names, splits = class_names_and_splits(
        items, lambda label: f"class_{label + 1:05d}", names_from_meta=False
    )
    labels: list[int] = []
    sets: dict[str, list[int]] = {key: [] for key in SETID_KEYS}
    for num, item in enumerate(items, start=1):
        rec = item.record
        stem = f"image_{num:05d}"
        save_jpeg(item.image, out / "jpg" / f"{stem}.jpg")
        labels.append(rec.label + 1)  # type: ignore[operator]
        image_split = rec.meta.get("image_split", ("trn", "val", "tst")[(num - 1) % 3])
        if image_split not in sets:
            raise ValueError(f"record {rec.image_id}: image_split must be trn, val or tst")
        sets[image_split].append(num)
        captions = check_captions(rec, captions_per_image)
        write_lines(reed / "text_c10" / names[rec.label] / f"{stem}.txt", captions)  # type: ignore[index]

    savemat_deterministic(out / "imagelabels.mat", {"labels": row_vector(labels)})
    savemat_deterministic(
        out / "setid.mat", {SETID_KEYS[s]: row_vector(ids) for s, ids in sets.items()}
    )
    write_class_splits(reed, names, splits)
    return out


@BREAKERS.register("flowers")
def break_flowers(root: Path) -> Path:
    """Drop the ``valid`` key from setid.mat, as in a truncated re-export of the file."""
    path = Path(root) / "setid.mat"
    mat = scipy.io.loadmat(path)
    kept = {k: v for k, v in mat.items() if not k.startswith("__") and k != "valid"}
    savemat_deterministic(path, kept)
    return path
