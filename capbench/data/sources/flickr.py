"""Flickr8k (formats.md §1.3) and Flickr30k (§1.4), from Karpathy's JSON (§1.2) or the originals.

Expected under ``root``::

    flickr8k:  dataset_flickr8k.json                        (Karpathy)
               Flickr8k.token.txt, Flickr_8k.{train,dev,test}Images.txt   (original)
               Flicker8k_Dataset/<name>.jpg                 (the real, misspelled folder)
    flickr30k: dataset_flickr30k.json                       (Karpathy)
               results_20130124.token                       (original)
               flickr30k-images/<name>.jpg  (or flickr30k_images/)

``annotations="auto"`` prefers Karpathy's JSON when present. Flickr8k's ``dev`` is our ``val``.
The 8k token file's phantom rows for ``2258277193_586949ec62.jpg.1`` (an image that does not
exist) are dropped and counted in ``result.skipped["phantom_row"]``. The original Flickr30k
release has no split: its records take their split from ``dataset_flickr30k.json`` when that
is present (token-file images the JSON leaves out are counted as ``not_in_split``).
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
    caption_text,
    check_split,
    keep_image,
    load_json,
    read_lines,
    require_dir,
    require_file,
    require_key,
)

CAPTIONS_PER_IMAGE = 5
SPLITS = ("train", "val", "test")
ANNOTATION_MODES = ("auto", "karpathy", "original")
FLICKR8K_SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
# Phantom rows look like ``2258277193_586949ec62.jpg.1#0``: a name with a suffix after .jpg.
PHANTOM = re.compile(r"\.jpg\.\d+$")


def _image_dir(root: Path, candidates: tuple[str, ...]) -> Path:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return require_dir(root / candidates[0], f"image folder (one of {', '.join(candidates)})")


def parse_token_file(path: Path, result: ReadResult) -> dict[str, list[str]]:
    """``<name>.jpg#<n>\\t<caption>`` lines -> {name: captions in #n order}, phantoms dropped."""
    groups: dict[str, dict[int, str]] = {}
    for lineno, line in enumerate(read_lines(path), start=1):
        key, tab, caption = line.partition("\t")
        name, hash_, number = key.rpartition("#")
        if not tab or not hash_ or not number.isdigit() or not name:
            raise DatasetFormatError(
                path, f"line {lineno} {line[:80]!r}: expected '<image>.jpg#<n>\\t<caption>'"
            )
        if PHANTOM.search(name):
            result.skipped["phantom_row"] += 1
            continue
        captions = groups.setdefault(name, {})
        if int(number) in captions:
            raise DatasetFormatError(path, f"line {lineno}: caption #{number} given twice", name)
        captions[int(number)] = caption_text(caption, path, name)
    out: dict[str, list[str]] = {}
    for name, captions in groups.items():
        if len(captions) != CAPTIONS_PER_IMAGE:
            raise DatasetFormatError(
                path, f"expected {CAPTIONS_PER_IMAGE} captions, found {len(captions)}", name
            )
        out[name] = [captions[n] for n in sorted(captions)]
    return out


def read_karpathy_splits(path: Path) -> dict[str, tuple[str, list[str], dict]]:
    """Karpathy's ``dataset_flickr*.json`` -> {filename: (split, captions, meta)} in file order."""
    data = load_json(path)
    out: dict[str, tuple[str, list[str], dict]] = {}
    for index, entry in enumerate(require_key(data, "images", path, kind=list)):
        filename = require_key(entry, "filename", path, f"images[{index}]", kind=str)
        split = require_key(entry, "split", path, filename, kind=str)
        if split not in SPLITS:
            raise DatasetFormatError(path, f"split {split!r} is not one of {SPLITS}", filename)
        if filename in out:
            raise DatasetFormatError(path, "image listed twice", filename)
        sentences = require_key(entry, "sentences", path, filename, kind=list)
        captions = [
            caption_text(require_key(s, "raw", path, filename), path, filename) for s in sentences
        ]
        if len(captions) != CAPTIONS_PER_IMAGE:
            raise DatasetFormatError(
                path, f"expected {CAPTIONS_PER_IMAGE} sentences, found {len(captions)}", filename
            )
        meta = {"imgid": entry.get("imgid"), "sentids": entry.get("sentids")}
        out[filename] = (split, captions, meta)
    return out


def _records(
    result: ReadResult,
    items: list[tuple[str, str, list[str], dict]],
    image_dir: Path,
    annotation_file: Path,
    source: str,
    allow_missing: bool,
) -> ReadResult:
    listing = FileListing()  # one folder listing instead of a stat per image
    for filename, split, captions, meta in items:
        image_path = image_dir / filename
        if not keep_image(result, image_path, filename, annotation_file, allow_missing, listing):
            continue
        result.append(
            CaptionedImage(
                image_id=Path(filename).stem,
                image_path=str(image_path),
                split=split,
                captions=captions,
                source=source,
                meta={"filename": filename, **meta},
            )
        )
    return result


def _mode(root: Path, annotations: str, karpathy_file: str) -> str:
    if annotations not in ANNOTATION_MODES:
        raise ValueError(
            f"unknown annotations {annotations!r}; valid: {', '.join(ANNOTATION_MODES)}"
        )
    if annotations == "auto":
        return "karpathy" if (root / karpathy_file).is_file() else "original"
    return annotations


def _from_karpathy(
    root: Path, split: str | None, image_dir: Path, name: str, allow_missing: bool
) -> ReadResult:
    path = root / f"dataset_{name}.json"
    items = [
        (filename, s, captions, {"annotations": "karpathy", **meta})
        for filename, (s, captions, meta) in read_karpathy_splits(path).items()
        if split is None or s == split
    ]
    return _records(ReadResult(), items, image_dir, path, name, allow_missing)


@READERS.register("flickr8k")
def read_flickr8k(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    annotations: str = "auto",
) -> ReadResult:
    """Read Flickr8k (Karpathy JSON or the original token + split lists); ``dev`` -> ``val``."""
    root = Path(root).absolute()
    check_split(split, SPLITS, "flickr8k")
    mode = _mode(root, annotations, "dataset_flickr8k.json")
    image_dir = _image_dir(root, ("Flicker8k_Dataset", "Flickr8k_Dataset"))
    if mode == "karpathy":
        return _from_karpathy(root, split, image_dir, "flickr8k", allow_missing_images)
    result = ReadResult()
    token = root / "Flickr8k.token.txt"
    captions = parse_token_file(require_file(token, "original token file"), result)
    split_of: dict[str, str] = {}
    for s, fname in FLICKR8K_SPLIT_FILES.items():
        for filename in read_lines(root / fname):
            if filename in split_of:
                raise DatasetFormatError(
                    root / fname, f"image is also in the {split_of[filename]!r} list", filename
                )
            if filename not in captions:
                raise DatasetFormatError(
                    root / fname, f"image has no captions in {token.name}", filename
                )
            split_of[filename] = s
    items = [
        (filename, split_of[filename], caps, {"annotations": "original"})
        for filename, caps in captions.items()
        if filename in split_of and (split is None or split_of[filename] == split)
    ]
    unsplit = sum(1 for f in captions if f not in split_of)
    if unsplit:
        result.skipped["not_in_split"] += unsplit
    return _records(result, items, image_dir, token, "flickr8k", allow_missing_images)


@READERS.register("flickr30k")
def read_flickr30k(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    annotations: str = "auto",
) -> ReadResult:
    """Read Flickr30k (Karpathy JSON, or ``results_20130124.token`` split by the JSON)."""
    root = Path(root).absolute()
    check_split(split, SPLITS, "flickr30k")
    mode = _mode(root, annotations, "dataset_flickr30k.json")
    image_dir = _image_dir(root, ("flickr30k-images", "flickr30k_images"))
    if mode == "karpathy":
        return _from_karpathy(root, split, image_dir, "flickr30k", allow_missing_images)
    result = ReadResult()
    token = root / "results_20130124.token"
    captions = parse_token_file(require_file(token, "original token file"), result)
    karpathy = root / "dataset_flickr30k.json"
    if not karpathy.is_file():
        raise DatasetFormatError(
            karpathy,
            "the original Flickr30k release has no split: expected Karpathy's "
            "dataset_flickr30k.json next to results_20130124.token to assign train/val/test",
        )
    splits = read_karpathy_splits(karpathy)
    for filename in splits:
        if filename not in captions:
            raise DatasetFormatError(karpathy, f"image has no captions in {token.name}", filename)
    items = [
        (filename, splits[filename][0], caps, {"annotations": "original"})
        for filename, caps in captions.items()
        if filename in splits and (split is None or splits[filename][0] == split)
    ]
    unsplit = sum(1 for f in captions if f not in splits)
    if unsplit:
        result.skipped["not_in_split"] += unsplit
    return _records(result, items, image_dir, token, "flickr30k", allow_missing_images)
