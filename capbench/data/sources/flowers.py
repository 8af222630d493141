"""Oxford Flowers-102 with Reed et al.'s ``cvpr2016_flowers`` captions (formats.md §1.7-1.8).

Expected under ``root`` (or under ``root/flowers-102``, torchvision's folder)::

    jpg/image_00001.jpg ...   imagelabels.mat ("labels": 1..102 per image)
    setid.mat ("trnid", "valid", "tstid": 1-based image numbers)
    cvpr2016_flowers/trainvalclasses.txt, testclasses.txt, [trainclasses.txt, valclasses.txt],
                     text_c10/class_00001/image_06734.txt (10 captions each)

``split`` is Reed's zero-shot class split; the image-level trn/val/tst split of ``setid.mat``
is kept in ``meta["image_split"]``. ``label`` is 0-based (``imagelabels.mat`` minus 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    keep_image,
    load_mat,
    require_key,
)
from capbench.data.sources._reed import (
    CAPTIONS_PER_IMAGE,
    CLASS_SPLIT_FILES,
    check_split_name,
    class_split_of,
    keep_split,
    read_captions,
    read_class_splits,
)

SETID_KEYS = {"trnid": "trn", "valid": "val", "tstid": "tst"}


def int_vector(mat: dict[str, Any], key: str, path: Path) -> np.ndarray:
    """A MATLAB numeric vector (1xN, Nx1 or a squeezed scalar) as a flat int64 array."""
    value = np.atleast_1d(np.asarray(require_key(mat, key, path))).ravel()
    if value.dtype.kind not in "iuf" or (
        value.dtype.kind == "f" and not np.all(value == np.round(value))
    ):
        raise DatasetFormatError(
            path, f"key {key!r}: expected a vector of integers, got {value.dtype}"
        )
    return value.astype(np.int64)


def class_name(label_1based: int) -> str:
    return f"class_{label_1based:05d}"


def _find_base(root: Path) -> Path:
    if (
        not (root / "imagelabels.mat").is_file()
        and (root / "flowers-102" / "imagelabels.mat").is_file()
    ):
        return root / "flowers-102"
    return root


def image_splits(setid_path: Path, num_images: int) -> dict[int, str]:
    """{1-based image number: "trn"/"val"/"tst"} from setid.mat, every id checked."""
    setid = load_mat(setid_path)
    out: dict[int, str] = {}
    for key, name in SETID_KEYS.items():
        for num in int_vector(setid, key, setid_path).tolist():
            if not 1 <= num <= num_images:
                raise DatasetFormatError(
                    setid_path, f"key {key!r}: image number {num} outside 1..{num_images}", num
                )
            if num in out:
                raise DatasetFormatError(
                    setid_path, f"image in both {out[num]!r} and {name!r}", num
                )
            out[num] = name
    return out


@READERS.register("flowers")
def read_flowers(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    captions_per_image: int = CAPTIONS_PER_IMAGE,
) -> ReadResult:
    """Read Flowers-102 + Reed captions; ``split`` selects Reed's zero-shot class split."""
    base = _find_base(Path(root))
    reed = base / "cvpr2016_flowers"
    if not reed.is_dir() and (Path(root) / "cvpr2016_flowers").is_dir():
        reed = Path(root) / "cvpr2016_flowers"
    labels_path = base / "imagelabels.mat"
    labels = int_vector(load_mat(labels_path), "labels", labels_path)
    if labels.size and labels.min() < 1:
        raise DatasetFormatError(
            labels_path, "key 'labels': classes are numbered from 1", int(labels.argmin()) + 1
        )
    splits_by_image = image_splits(base / "setid.mat", len(labels))

    if not reed.is_dir():
        raise DatasetFormatError(reed, "missing Reed cvpr2016_flowers directory")
    known = {class_name(int(v)) for v in np.unique(labels)}
    splits = read_class_splits(reed, known)
    check_split_name(split, splits, reed)
    split_of = class_split_of(splits, reed / CLASS_SPLIT_FILES["trainval"])

    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    for num, label in enumerate(labels.tolist(), start=1):
        name = class_name(label)
        if name not in split_of:
            raise DatasetFormatError(
                reed / CLASS_SPLIT_FILES["trainval"],
                "class is in no zero-shot class split file",
                name,
            )
        record_split = split_of[name]
        if not keep_split(record_split, split):
            continue
        stem = f"image_{num:05d}"
        image_path = base / "jpg" / f"{stem}.jpg"
        if not keep_image(result, image_path, stem, labels_path, allow_missing_images, listing):
            continue
        meta: dict[str, Any] = {"class_name": name, "image_number": num}
        if num in splits_by_image:
            meta["image_split"] = splits_by_image[num]
        result.append(
            CaptionedImage(
                image_id=stem,
                image_path=str(image_path),
                split=split if split is not None else record_split,
                captions=read_captions(
                    reed / "text_c10" / name / f"{stem}.txt", stem, captions_per_image
                ),
                label=label - 1,
                source="flowers",
                meta=meta,
            )
        )
    return result
