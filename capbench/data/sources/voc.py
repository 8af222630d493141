"""PASCAL VOC 2007 classification labels (formats.md §1.9).

Expected: ``VOCdevkit/VOC2007/JPEGImages/<id>.jpg`` and ``ImageSets/Main/<cls>_<split>.txt``
with lines ``<id> <label>``: 1 present, -1 absent, 0 difficult only. The files are printed with
``%s %2d`` so positives have two spaces: lines are split on whitespace. ``root`` may be the folder
holding ``VOCdevkit``, ``VOCdevkit`` itself or ``VOC2007`` itself.

Records: ``labels`` = present class indices, ``meta["difficult"]`` = difficult-only class
indices, ``meta["classes"]`` = the class list: the order in ``VOC2007/capbench_classes.txt``
when present (only datasets written by capbench have it), else the 20 VOC classes in canonical
order when the files are exactly those, else the class names found, sorted. ``split=None`` reads train, val
and test (or trainval when train/val files are absent); ``trainval`` can be asked for directly.
"""

from __future__ import annotations

import re
from pathlib import Path

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    keep_image,
    read_lines,
    require_dir,
)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
SPLITS = ("train", "val", "trainval", "test")
# Not part of VOC: our writer stores the class order here when it is not the canonical 20.
CLASS_ORDER_FILE = "capbench_classes.txt"
_CLASS_FILE = re.compile(r"^(?P<cls>.+)_(?P<split>train|val|trainval|test)\.txt$")


def find_voc2007(root: Path) -> Path:
    """The ``VOC2007`` folder, from any of the three usual roots."""
    for candidate in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    return require_dir(
        root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main", "VOC ImageSets/Main"
    ).parents[1]


def class_files(main: Path) -> dict[str, dict[str, Path]]:
    """{split: {class: path}} for every ``<cls>_<split>.txt`` in ImageSets/Main."""
    found: dict[str, dict[str, Path]] = {s: {} for s in SPLITS}
    for path in sorted(main.glob("*_*.txt")):
        match = _CLASS_FILE.match(path.name)
        if match:
            found[match["split"]][match["cls"]] = path
    return found


def class_list(found: dict[str, dict[str, Path]], voc: Path) -> list[str]:
    """Class order: ``capbench_classes.txt`` when present (written by our writer), else the
    canonical 20 when the class files are exactly those, else the names found, sorted."""
    names = set().union(*(set(per_class) for per_class in found.values()))
    order_file = voc / CLASS_ORDER_FILE
    if order_file.is_file():
        order = read_lines(order_file)
        if set(order) != names or len(order) != len(names):
            raise DatasetFormatError(
                order_file,
                f"must list each class with files in ImageSets/Main once: {sorted(names)}",
            )
        return order
    return list(VOC_CLASSES) if names == set(VOC_CLASSES) else sorted(names)


def parse_label_file(path: Path) -> dict[str, int]:
    """``<id> <label>`` lines -> {id: label in {1, -1, 0}}; anything else names the line."""
    out: dict[str, int] = {}
    for lineno, line in enumerate(read_lines(path), start=1):
        cols = line.split()
        if len(cols) != 2 or cols[1] not in ("1", "-1", "0"):
            raise DatasetFormatError(
                path,
                f"line {lineno} {line!r}: expected '<image id> <label>' with label 1, -1 or 0",
                cols[0] if cols else None,
            )
        if cols[0] in out:
            raise DatasetFormatError(path, f"line {lineno}: image listed twice", cols[0])
        out[cols[0]] = int(cols[1])
    return out


def read_image_list(path: Path) -> list[str]:
    """``<split>.txt``: one image id per line. An id listed twice would make two records of one
    image (the real lists never repeat one), so a repeat is an error naming both lines."""
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(read_lines(path), start=1):
        image_id = line.split()[0]
        if image_id in first_line:
            raise DatasetFormatError(
                path,
                f"line {lineno}: image listed twice (first at line {first_line[image_id]}); "
                "expected each id once",
                image_id,
            )
        first_line[image_id] = lineno
    return list(first_line)


def splits_to_read(split: str | None, found: dict[str, dict[str, Path]], main: Path) -> list[str]:
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"unknown VOC split {split!r}; expected one of {SPLITS} or None")
        if not found[split] and not (main / f"{split}.txt").is_file():
            raise DatasetFormatError(
                main / f"{split}.txt", f"no image set files for split {split!r}"
            )
        return [split]
    present = [s for s in SPLITS if found[s]]
    if "train" in present or "val" in present:
        present = [s for s in present if s != "trainval"]
    if not present:
        raise DatasetFormatError(main, "no '<class>_<split>.txt' files in ImageSets/Main")
    return present


@READERS.register("voc2007")
def read_voc2007(
    root: Path, split: str | None = None, *, allow_missing_images: bool = False
) -> ReadResult:
    """Read VOC 2007 multi-labels (present / difficult) for one split or all."""
    voc = find_voc2007(Path(root))
    main = voc / "ImageSets" / "Main"
    found = class_files(main)
    classes = class_list(found, voc)
    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    for name in splits_to_read(split, found, main):
        per_class = {}
        for cls in classes:
            path = found[name].get(cls, main / f"{cls}_{name}.txt")
            if not path.is_file():
                raise DatasetFormatError(
                    path, f"missing class file: every class needs one for split {name!r}"
                )
            per_class[cls] = parse_label_file(path)
        list_file = main / f"{name}.txt"
        if list_file.is_file():
            ids = read_image_list(list_file)
        else:  # the image list is optional: fall back to the first class file's ids
            list_file = found[name].get(classes[0], list_file)
            ids = list(per_class[classes[0]])
        for image_id in ids:
            labels, difficult = [], []
            for idx, cls in enumerate(classes):
                value = per_class[cls].get(image_id)
                if value is None:
                    raise DatasetFormatError(
                        main / f"{cls}_{name}.txt",
                        f"image of {name}.txt has no label line",
                        image_id,
                    )
                if value == 1:
                    labels.append(idx)
                elif value == 0:
                    difficult.append(idx)
            image_path = voc / "JPEGImages" / f"{image_id}.jpg"
            if not keep_image(
                result, image_path, image_id, list_file, allow_missing_images, listing
            ):
                continue
            result.append(
                CaptionedImage(
                    image_id=image_id,
                    image_path=str(image_path),
                    split=name,
                    labels=labels,
                    source="voc2007",
                    meta={"difficult": difficult, "classes": classes},
                )
            )
    return result
