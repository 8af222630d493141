"""ImageNet-1k (ILSVRC 2012) classification, for linear probes on frozen features (ICMLM's IN-1k
logistic regression). See ``data_cards/imagenet.md``.

Expected under ``root`` (the folder holding ``train/`` and ``val/``, or Kaggle's download root
holding ``ILSVRC/Data/CLS-LOC/``)::

    train/<wnid>/<wnid>_<n>.JPEG            one folder per class (1,000), 1,281,167 images
    val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG   the usual re-foldered validation set, or
    val/ILSVRC2012_val_<8 digits>.JPEG          flat, labelled by LOC_val_solution.csv
    LOC_val_solution.csv                    (flat val only) "ImageId,PredictionString", the
                                            prediction string starting with the wnid
    LOC_synset_mapping.txt                  (optional) "<wnid> <names>", for readable names

Classes are the train folders' wnids, sorted: the index order torchvision's ``ImageFolder`` and
every ImageNet checkpoint use. Records: ``label`` = that index (``labels`` = [it]),
``meta["wnid"]``, ``meta["classes"]`` (the wnids) and, with the mapping file,
``meta["class_names"]``. The devkit's ``ILSVRC2012_validation_ground_truth.txt`` is not read: its
ids follow ``meta.mat``'s ILSVRC2012_ID order, not the sorted wnids, a classic source of silently
wrong labels; re-folder ``val/`` or use the CSV.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import ReadResult, check_split, read_text, require_dir

SPLITS = ("train", "val")
VAL_SOLUTION = "LOC_val_solution.csv"
SYNSET_MAPPING = "LOC_synset_mapping.txt"
WNID = re.compile(r"^n\d{8}$")
# ImageNet's train set holds a few PNG and CMYK files named .JPEG; the loader decodes by content
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})


def find_imagenet(root: Path) -> Path:
    """The folder holding ``train/``: ``root`` itself or Kaggle's ``ILSVRC/Data/CLS-LOC``."""
    for candidate in (root, root / "ILSVRC" / "Data" / "CLS-LOC"):
        if (candidate / "train").is_dir():
            return candidate
    return require_dir(root / "train", "ImageNet train/<wnid>/ folders").parent


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _class_names(root: Path, base: Path, wnids: list[str]) -> list[str] | None:
    for folder in (root, base):
        path = folder / SYNSET_MAPPING
        if path.is_file():
            names: dict[str, str] = {}
            for n, line in enumerate(read_text(path).splitlines(), 1):
                if line.strip():
                    wnid, _, name = line.strip().partition(" ")
                    if not WNID.match(wnid):
                        raise DatasetFormatError(
                            path, f"line {n}: {line!r} is not '<wnid> <names>'"
                        )
                    names[wnid] = name.strip()
            return [names.get(w, w) for w in wnids]
    return None


def _val_labels(root: Path, base: Path, classes: dict[str, int]) -> tuple[Path, dict[str, str]]:
    """{image stem: wnid} of the flat validation set from Kaggle's solution CSV."""
    path = next((f / VAL_SOLUTION for f in (root, base) if (f / VAL_SOLUTION).is_file()), None)
    if path is None:
        raise DatasetFormatError(
            base / "val",
            f"flat val/ images need {VAL_SOLUTION} (Kaggle's labels) beside it or under {root}; "
            "or re-folder val/ into val/<wnid>/ (the devkit's ground-truth ids are not read)",
        )
    rows = csv.reader(io.StringIO(read_text(path)))
    header = next(rows, None)
    if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
        raise DatasetFormatError(path, f"header {header!r}: expected ImageId,PredictionString")
    labels: dict[str, str] = {}
    for n, row in enumerate(rows, 2):
        if not row:
            continue
        if len(row) < 2 or not row[1].split():
            raise DatasetFormatError(path, f"line {n}: expected 'ImageId,<wnid> x y x y ...'")
        image, wnid = row[0].strip(), row[1].split()[0]
        if wnid not in classes:
            raise DatasetFormatError(path, f"line {n}: {wnid!r} is not a class of train/", image)
        if image in labels:
            raise DatasetFormatError(path, f"line {n}: image listed twice", image)
        labels[image] = wnid
    return path, labels


@READERS.register("imagenet")
def read_imagenet(root: Path, split: str | None = None) -> ReadResult:
    """Read ImageNet-1k ``train`` and/or ``val`` (``split=None``: both)."""
    check_split(split, SPLITS, "imagenet")
    root = Path(root).absolute()
    base = find_imagenet(root)
    train_dir = base / "train"
    wnids = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not wnids or any(not WNID.match(w) for w in wnids):
        bad = [w for w in wnids if not WNID.match(w)][:3]
        raise DatasetFormatError(
            train_dir, f"expected one n########-named folder per class, found {bad or 'none'}"
        )
    classes = {w: i for i, w in enumerate(wnids)}
    names = _class_names(root, base, wnids)
    meta_common = {"classes": wnids, **({"class_names": names} if names else {})}
    result = ReadResult()

    def add(path: Path, wnid: str, which: str) -> None:
        meta = {"wnid": wnid, **meta_common}
        result.append(
            CaptionedImage(
                image_id=path.stem,
                image_path=str(path),
                split=which,
                label=classes[wnid],
                labels=[classes[wnid]],
                meta=meta,
            )
        )

    if split in (None, "train"):
        for wnid in wnids:
            for path in _images(train_dir / wnid):
                add(path, wnid, "train")
    if split in (None, "val"):
        val_dir = require_dir(base / "val", "ImageNet val/ folder")
        folders = sorted(p for p in val_dir.iterdir() if p.is_dir())
        if folders:
            for folder in folders:
                if folder.name not in classes:
                    raise DatasetFormatError(folder, "val/ folder is not a class of train/")
                for path in _images(folder):
                    add(path, folder.name, "val")
        else:
            csv_path, labels = _val_labels(root, base, classes)
            for path in _images(val_dir):
                if path.stem not in labels:
                    raise DatasetFormatError(csv_path, "no label for this val image", path.stem)
                add(path, labels[path.stem], "val")
    return result
