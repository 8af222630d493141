"""MS-COCO 2014 captions (formats.md §1.1), with official or Karpathy splits (§1.2).

Expected under ``root``::

    annotations/captions_train2014.json, annotations/captions_val2014.json
    train2014/COCO_train2014_%012d.jpg, val2014/COCO_val2014_%012d.jpg
    dataset_coco.json                      (only for splits="karpathy")

``splits="official"`` gives ``train`` (from captions_train2014.json) and ``val`` (from
captions_val2014.json); the 2014 test images have no public captions. ``splits="karpathy"``
takes images, splits and captions from Karpathy's ``dataset_coco.json`` (image at
``<root>/<filepath>/<filename>``); his ``restval`` is counted as ``train`` (the usual
"Karpathy train" of 113k images) and kept in ``meta["karpathy_split"]``.

``instances=True`` also reads COCO's object annotations, ``annotations/instances_train2014.json``
and ``instances_val2014.json`` (from ``annotations_trainval2014.zip``; the scenes generator
writes them with its shapes as categories): ``labels`` = the image's category indices (0-based,
in the order of the category ids), ``meta["categories"]`` = the category names in that order and
``meta["instances"]`` = ``[(category index, x, y, w, h), ...]`` (ICMLM's TP_Label baseline).
"""

from __future__ import annotations

from pathlib import Path

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    caption_text,
    check_split,
    is_json_number,
    keep_image,
    load_json,
    require_key,
)

OFFICIAL_FILES = {
    "train": "annotations/captions_train2014.json",
    "val": "annotations/captions_val2014.json",
}
KARPATHY_FILE = "dataset_coco.json"
INSTANCES_FILES = ("annotations/instances_train2014.json", "annotations/instances_val2014.json")
# Karpathy's split names -> ours; restval is the part of val2014 that trains.
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
SPLIT_MODES = ("official", "karpathy")


@READERS.register("coco")
def read_coco(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    splits: str = "official",
    instances: bool = False,
) -> ReadResult:
    """Read COCO 2014 captions with ``splits="official"`` (train/val) or ``"karpathy"``; with
    ``instances`` also the object categories of each image."""
    root = Path(root).absolute()
    if splits == "official":
        check_split(split, tuple(OFFICIAL_FILES), "coco with official splits")
        result = _read_official(root, split, allow_missing_images)
    elif splits == "karpathy":
        check_split(split, ("train", "val", "test"), "coco with Karpathy splits")
        result = _read_karpathy(root, split, allow_missing_images)
    else:
        raise ValueError(f"unknown coco splits {splits!r}; valid: {', '.join(SPLIT_MODES)}")
    if instances:
        _add_instances(root, result)
    return result


def _add_instances(root: Path, records: list[CaptionedImage]) -> None:
    """Set ``labels`` and ``meta["categories"/"instances"]`` from both instances files."""
    names: dict[int, str] = {}
    boxes: dict[int, list[tuple[int, float, float, float, float]]] = {}
    raw: list[tuple[Path, int, int, list]] = []
    for rel in INSTANCES_FILES:
        path = root / rel
        data = load_json(path)
        for cat in require_key(data, "categories", path, kind=list):
            cat_id = require_key(cat, "id", path, "category ?", kind=int)
            name = require_key(cat, "name", path, f"category {cat_id}")
            if names.setdefault(cat_id, name) != name:
                raise DatasetFormatError(
                    path, f"category {cat_id} is {name!r} here and {names[cat_id]!r} elsewhere"
                )
        for ann in require_key(data, "annotations", path, kind=list):
            where = f"annotation {ann.get('id', '?') if isinstance(ann, dict) else '?'}"
            image_id = require_key(ann, "image_id", path, where, kind=(int, str))
            cat_id = require_key(ann, "category_id", path, where, kind=int)
            bbox = require_key(ann, "bbox", path, where)
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_json_number, bbox))):
                raise DatasetFormatError(path, f"bbox {bbox!r}: expected [x, y, w, h]", where)
            raw.append((path, image_id, cat_id, bbox))
    order = {cat_id: i for i, cat_id in enumerate(sorted(names))}
    for path, image_id, cat_id, bbox in raw:
        if cat_id not in order:
            raise DatasetFormatError(
                path, f"category_id {cat_id} is not in 'categories'", f"image {image_id}"
            )
        boxes.setdefault(image_id, []).append((order[cat_id], *map(float, bbox)))  # type: ignore[arg-type]
    categories = [names[c] for c in sorted(names)]
    for rec in records:
        found = boxes.get(rec.meta["coco_id"], [])
        rec.labels = sorted({b[0] for b in found})
        rec.meta["categories"] = categories
        rec.meta["instances"] = found


def _read_official(root: Path, split: str | None, allow_missing: bool) -> ReadResult:
    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    for name, rel in OFFICIAL_FILES.items():
        if split is not None and name != split:
            continue
        path = root / rel
        data = load_json(path)
        images = require_key(data, "images", path, kind=list)
        annotations = require_key(data, "annotations", path, kind=list)
        captions: dict[int, list[str]] = {}
        ann_ids: dict[int, list[int]] = {}
        seen: dict[int, tuple[int, str]] = {}  # annotation id -> (image id, caption as given)
        repeats: list[int] = []
        for img in images:
            coco_id = require_key(img, "id", path, kind=(int, str))
            require_key(img, "file_name", path, coco_id, kind=str)
            if coco_id in captions:
                raise DatasetFormatError(path, "duplicate image id in 'images'", coco_id)
            captions[coco_id] = []
            ann_ids[coco_id] = []
        for ann in annotations:
            ann_id = require_key(ann, "id", path, "annotation ?", kind=(int, str))
            where = f"annotation {ann_id}"
            image_id = require_key(ann, "image_id", path, where, kind=(int, str))
            text = caption_text(require_key(ann, "caption", path, where), path, where)
            if image_id not in captions:
                raise DatasetFormatError(
                    path, f"image_id {image_id} is not in this file's 'images'", where
                )
            if ann_id in seen:
                if seen[ann_id] != (image_id, ann["caption"]):
                    raise DatasetFormatError(
                        path,
                        f"annotation id given twice with different content: image "
                        f"{seen[ann_id][0]} {seen[ann_id][1]!r}, then image {image_id} "
                        f"{ann['caption']!r}; expected unique annotation ids",
                        where,
                    )
                repeats.append(ann_id)  # an exact copy: the caption is already counted
                continue
            seen[ann_id] = (image_id, ann["caption"])
            captions[image_id].append(text)
            ann_ids[image_id].append(ann_id)
        result.drop_repeats(
            "duplicate_annotation", path, repeats, "exact repeat(s) of a caption annotation"
        )
        image_dir = root / Path(rel).name.removeprefix("captions_").removesuffix(".json")
        for img in images:
            coco_id = img["id"]
            if not captions[coco_id]:
                raise DatasetFormatError(path, "image has no caption: expected 5-7", coco_id)
            image_path = image_dir / img["file_name"]
            if not keep_image(result, image_path, coco_id, path, allow_missing, listing):
                continue
            result.append(
                CaptionedImage(
                    image_id=str(coco_id),
                    image_path=str(image_path),
                    split=name,
                    captions=captions[coco_id],
                    source="coco",
                    meta={
                        "coco_id": coco_id,
                        "file_name": img["file_name"],
                        "annotation_ids": ann_ids[coco_id],
                        "width": img.get("width"),
                        "height": img.get("height"),
                    },
                )
            )
    return result


def _read_karpathy(root: Path, split: str | None, allow_missing: bool) -> ReadResult:
    path = root / KARPATHY_FILE
    data = load_json(path)
    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    seen: set[int] = set()
    for entry in require_key(data, "images", path, kind=list):
        coco_id = require_key(
            entry, "cocoid", path, f"imgid {entry.get('imgid', '?')}", kind=(int, str)
        )
        raw_split = require_key(entry, "split", path, coco_id, kind=str)
        if raw_split not in KARPATHY_SPLITS:
            raise DatasetFormatError(
                path,
                f"split {raw_split!r} is not one of {', '.join(KARPATHY_SPLITS)}",
                coco_id,
            )
        if coco_id in seen:
            raise DatasetFormatError(path, "duplicate cocoid", coco_id)
        seen.add(coco_id)
        ours = KARPATHY_SPLITS[raw_split]
        if split is not None and ours != split:
            continue
        filepath = require_key(entry, "filepath", path, coco_id, kind=str)
        filename = require_key(entry, "filename", path, coco_id, kind=str)
        sentences = require_key(entry, "sentences", path, coco_id, kind=list)
        if not sentences:
            raise DatasetFormatError(path, "image has no sentences: expected 5-7", coco_id)
        captions = [
            caption_text(require_key(s, "raw", path, coco_id), path, coco_id) for s in sentences
        ]
        image_path = root / filepath / filename
        if not keep_image(result, image_path, coco_id, path, allow_missing, listing):
            continue
        result.append(
            CaptionedImage(
                image_id=str(coco_id),
                image_path=str(image_path),
                split=ours,
                captions=captions,
                source="coco",
                meta={
                    "coco_id": coco_id,
                    "file_name": filename,
                    "karpathy_split": raw_split,
                    "imgid": entry.get("imgid"),
                    "sentids": [s.get("sentid") for s in sentences],
                },
            )
        )
    return result
