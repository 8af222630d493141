"""Reed et al.'s ``cvpr2016_cub`` / ``cvpr2016_flowers`` archives (formats.md §1.7): the class
split files and the ``text_c10`` caption files, read the same way by the CUB and Flowers readers.

``split`` there is a zero-shot *class* split: ``trainval``/``test`` always, ``train``/``val``
where their class files exist.
"""

from __future__ import annotations

from pathlib import Path

from capbench.data.errors import DatasetFormatError
from capbench.data.sources._common import read_lines

CAPTIONS_PER_IMAGE = 10
# Reed's class split files; ``train``/``val`` are optional (some copies ship only trainval/test).
CLASS_SPLIT_FILES = {
    "train": "trainclasses.txt",
    "val": "valclasses.txt",
    "trainval": "trainvalclasses.txt",
    "test": "testclasses.txt",
}


def read_class_splits(reed_dir: Path, known: set[str]) -> dict[str, list[str]]:
    """Reed's zero-shot class split files present in ``reed_dir`` -> {split: [class names]}.

    ``trainvalclasses.txt`` and ``testclasses.txt`` are required; ``trainclasses.txt`` and
    ``valclasses.txt`` are read when present. Every name must be a known class.
    """
    splits: dict[str, list[str]] = {}
    for split, fname in CLASS_SPLIT_FILES.items():
        path = reed_dir / fname
        if split in ("train", "val") and not path.is_file():
            continue
        names = read_lines(path) if path.is_file() else None
        if names is None:
            raise DatasetFormatError(path, f"missing Reed class split file for {split!r} classes")
        for name in names:
            if name not in known:
                raise DatasetFormatError(path, "class not in the dataset's class list", name)
        splits[split] = names
    if ("train" in splits) != ("val" in splits):
        missing = "valclasses.txt" if "train" in splits else "trainclasses.txt"
        raise DatasetFormatError(
            reed_dir / missing, "trainclasses.txt and valclasses.txt come as a pair"
        )
    return splits


def class_split_of(splits: dict[str, list[str]], split_file: Path) -> dict[str, str]:
    """Each class's finest split: train/val/test when train/val files exist, else trainval/test."""
    finest = ("train", "val", "test") if "train" in splits else ("trainval", "test")
    out: dict[str, str] = {}
    for split in finest:
        for name in splits[split]:
            if name in out:
                raise DatasetFormatError(
                    split_file.parent / CLASS_SPLIT_FILES[split],
                    f"class is in both the {out[name]!r} and {split!r} class split files",
                    name,
                )
            out[name] = split
    if "train" in splits:
        trainval = set(splits["trainval"])
        if trainval != set(splits["train"]) | set(splits["val"]):
            raise DatasetFormatError(
                split_file.parent / CLASS_SPLIT_FILES["trainval"],
                "trainval classes must be exactly the train classes plus the val classes",
            )
    return out


def check_split_name(split: str | None, splits: dict[str, list[str]], reed_dir: Path) -> None:
    if split is None or split in splits:
        return
    if split in CLASS_SPLIT_FILES:
        raise DatasetFormatError(
            reed_dir / CLASS_SPLIT_FILES[split],
            f"split {split!r} requested but its class file is missing",
        )
    raise ValueError(f"unknown split {split!r}; expected one of {sorted(splits)} or None")


def keep_split(record_split: str, requested: str | None) -> bool:
    if requested is None or requested == record_split:
        return True
    return requested == "trainval" and record_split in ("train", "val")


def read_captions(path: Path, record_id: str, expected: int = CAPTIONS_PER_IMAGE) -> list[str]:
    """One text_c10 file: exactly ``expected`` non-empty caption lines."""
    if not path.is_file():
        raise DatasetFormatError(
            path, f"missing caption file: expected {expected} captions", record_id
        )
    captions = read_lines(path)
    if len(captions) != expected:
        raise DatasetFormatError(
            path, f"expected exactly {expected} caption lines, found {len(captions)}", record_id
        )
    return captions
