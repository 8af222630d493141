"""CUB-200-2011 with Reed et al.'s ``cvpr2016_cub`` captions (formats.md §1.6-1.7).

Expected under ``root``::

    CUB_200_2011/images.txt, classes.txt, image_class_labels.txt, train_test_split.txt,
                 bounding_boxes.txt (optional), images/<class>/<file>.jpg
    cvpr2016_cub/trainvalclasses.txt, testclasses.txt, [trainclasses.txt, valclasses.txt],
                 [allclasses.txt], text_c10/<class>/<image_stem>.txt (10 captions each)

``read_class_attributes`` reads CUB's per-class attribute vectors
(``CUB_200_2011/attributes/class_attribute_labels_continuous.txt``), the input of Reed et al.'s
attributes baseline; the records do not carry them.

``split`` is Reed's zero-shot *class* split (``trainval``/``test``, and ``train``/``val`` where
their class files exist); the dataset's own image-level split (``train_test_split.txt``, where
**1 = train**) is kept in ``meta["image_split"]``. The Reed archive helpers (class split files,
``text_c10`` captions) live in ``_reed`` and are shared with Flowers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    keep_image,
    read_lines,
    require_dir,
    require_file,
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

CLASS_ATTRIBUTES_FILE = Path("attributes") / "class_attribute_labels_continuous.txt"
CUB_ATTRIBUTES = 312  # attributes of CUB-200-2011 (28 groups such as has_bill_shape)


def parse_columns(path: Path, n: int) -> list[tuple[int, list[str]]]:
    """Lines of a space-separated file as ``(line_number, columns)``, each with exactly ``n`` columns.

    The last column takes the rest of the line, so names never get split.
    """
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        cols = line.split(maxsplit=n - 1)
        if len(cols) != n:
            raise DatasetFormatError(
                path, f"line {lineno} {line!r}: expected {n} space-separated columns"
            )
        out.append((lineno, cols))
    return out


def parse_int(path: Path, lineno: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DatasetFormatError(
            path, f"line {lineno}: {what} {value!r} is not an integer"
        ) from None


def parse_id_table(path: Path) -> dict[int, str]:
    """``<int id> <value>`` lines (CUB's images.txt, classes.txt, ...) -> {id: value}."""
    table: dict[int, str] = {}
    for lineno, (key, value) in parse_columns(path, 2):
        idx = parse_int(path, lineno, key, "id")
        if idx in table:
            raise DatasetFormatError(path, f"line {lineno}: duplicate id", idx)
        table[idx] = value
    return table


def _find_base(root: Path) -> Path:
    """Accept the folder holding ``CUB_200_2011/`` or ``CUB_200_2011/`` itself."""
    if (root / "CUB_200_2011").is_dir():
        return root
    if root.name == "CUB_200_2011" and root.is_dir():
        return root.parent
    return require_dir(root / "CUB_200_2011", "CUB_200_2011 directory").parent


@READERS.register("cub")
def read_cub(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    captions_per_image: int = CAPTIONS_PER_IMAGE,
) -> ReadResult:
    """Read CUB-200-2011 + Reed captions; ``split`` selects Reed's zero-shot class split."""
    base = _find_base(Path(root))
    cub = base / "CUB_200_2011"
    reed = require_dir(base / "cvpr2016_cub", "Reed cvpr2016_cub directory")

    images_txt = cub / "images.txt"
    images = parse_id_table(images_txt)
    classes_txt = cub / "classes.txt"
    classes = parse_id_table(classes_txt)
    labels_txt = cub / "image_class_labels.txt"
    labels = parse_id_table(labels_txt)
    split_txt = cub / "train_test_split.txt"
    is_train = parse_id_table(split_txt)
    bbox_txt = cub / "bounding_boxes.txt"
    boxes: dict[int, list[float]] = {}
    if bbox_txt.is_file():
        for lineno, cols in parse_columns(bbox_txt, 5):
            try:
                boxes[int(cols[0])] = [float(v) for v in cols[1:]]
            except ValueError:
                raise DatasetFormatError(
                    bbox_txt, f"line {lineno}: expected '<image_id> <x> <y> <width> <height>'"
                ) from None

    name_to_id = {name: cid for cid, name in classes.items()}
    splits = read_class_splits(reed, set(name_to_id))
    check_split_name(split, splits, reed)
    split_of = class_split_of(splits, reed / CLASS_SPLIT_FILES["trainval"])
    all_txt = reed / "allclasses.txt"
    if all_txt.is_file():
        for name in read_lines(all_txt):
            if name not in name_to_id:
                raise DatasetFormatError(all_txt, "class not in CUB_200_2011/classes.txt", name)

    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    for image_id, rel_path in images.items():
        if image_id not in labels:
            raise DatasetFormatError(labels_txt, "image has no class label", image_id)
        if image_id not in is_train:
            raise DatasetFormatError(split_txt, "image has no train/test entry", image_id)
        if not labels[image_id].isdigit():
            raise DatasetFormatError(
                labels_txt, f"class id {labels[image_id]!r} is not an integer", image_id
            )
        class_id = int(labels[image_id])
        if class_id not in classes:
            raise DatasetFormatError(
                labels_txt, f"class id {class_id} not in classes.txt", image_id
            )
        class_name = classes[class_id]
        if class_name not in split_of:
            raise DatasetFormatError(
                reed / CLASS_SPLIT_FILES["trainval"],
                "class is in no zero-shot class split file",
                class_name,
            )
        record_split = split_of[class_name]
        if not keep_split(record_split, split):
            continue
        flag = is_train[image_id]
        if flag not in ("0", "1"):
            raise DatasetFormatError(
                split_txt, f"is_training_image must be 0 or 1, got {flag!r}", image_id
            )
        stem = Path(rel_path).stem
        image_path = cub / "images" / rel_path
        if not keep_image(result, image_path, image_id, images_txt, allow_missing_images, listing):
            continue
        caption_file = reed / "text_c10" / class_name / f"{stem}.txt"
        meta = {
            "class_name": class_name,
            "image_split": "train" if flag == "1" else "test",  # 1 = train in CUB
            "cub_id": image_id,
        }
        if image_id in boxes:
            meta["bbox"] = boxes[image_id]
        result.append(
            CaptionedImage(
                image_id=stem,
                image_path=str(image_path),
                split=split if split is not None else record_split,
                captions=read_captions(caption_file, stem, captions_per_image),
                label=class_id - 1,
                source="cub",
                meta=meta,
            )
        )
    return result


def read_class_attributes(root: Path, n_attributes: int | None = None) -> np.ndarray:
    """CUB's continuous class attributes -> ``(n_classes, n_attributes)`` float32 (200 x 312
    for CUB-200-2011).

    ``CUB_200_2011/attributes/class_attribute_labels_continuous.txt`` has one line per class of
    ``classes.txt`` (row k = the k-th class in id order, i.e. class id k + 1 in the real files),
    each with one space-separated value per attribute: the percentage (0-100) of the class's
    images annotated with it. Every line must have ``n_attributes`` values (default: as many as
    the first line; CUB has ``CUB_ATTRIBUTES``).
    """
    cub = _find_base(Path(root)) / "CUB_200_2011"
    n_classes = len(parse_id_table(cub / "classes.txt"))
    path = require_file(cub / CLASS_ATTRIBUTES_FILE, "CUB class attribute file")
    rows: list[list[float]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            values = line.split()
            if n_attributes is None:
                n_attributes = len(values)
            if len(values) != n_attributes:
                raise DatasetFormatError(
                    path,
                    f"line {lineno}: expected {n_attributes} space-separated attribute values, "
                    f"found {len(values)}",
                )
            rows.append([_percentage(path, lineno, col, v) for col, v in enumerate(values, 1)])
    if len(rows) != n_classes:
        raise DatasetFormatError(
            path, f"expected one line per class of classes.txt ({n_classes}), found {len(rows)}"
        )
    return np.asarray(rows, dtype=np.float32)


def _percentage(path: Path, lineno: int, column: int, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 100.0:  # also refuses nan
        raise DatasetFormatError(
            path, f"line {lineno}, value {column}: expected a percentage 0-100, got {value!r}"
        )
    return number
