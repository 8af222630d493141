"""Write records as CUB-200-2011 + Reed's ``cvpr2016_cub`` (the inverse of ``sources/cub.py``).

Record fields used: ``image_id`` (file stem), ``label`` (0-based class), ``split`` (Reed's
zero-shot class split: train/val/test, or trainval/test), ``captions`` (exactly 10).
``meta`` keys: ``class_name`` (default ``"{label+1:03d}.class_{label+1}"``), ``image_split``
("train"/"test", default alternating), ``bbox`` ([x, y, w, h], optional), ``attributes``
(optional, on every record or none: the image's attribute labels, 0/1 per attribute, from which
``attributes/class_attribute_labels_continuous.txt`` is written as CUB defines it, the
percentage of each class's images labelled with each attribute).

The JPEG and Reed helpers are shared with the Flowers, VOC and graded-retrieval writers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from capbench.data.records import CaptionedImage
from capbench.data.sources.cub import CLASS_ATTRIBUTES_FILE
from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_lines


def check_captions(record: CaptionedImage, expected: int) -> list[str]:
    """The record's captions as single lines; a text_c10 file must have exactly ``expected``."""
    captions = [" ".join(c.split()) for c in record.captions]
    if len(captions) != expected or not all(captions):
        raise ValueError(
            f"record {record.image_id}: text_c10 needs exactly {expected} non-empty captions, "
            f"got {len(captions)}"
        )
    return captions


def class_names_and_splits(
    items: Sequence[WritableImage],
    default_name: Callable[[int], str],
    names_from_meta: bool = True,
) -> tuple[dict[int, str], dict[str, str]]:
    """{label: class name} and {class name: zero-shot split}, checking each class is consistent.

    ``names_from_meta=False`` always uses ``default_name`` (Flowers stores numbered classes only).
    """
    names: dict[int, str] = {}
    splits: dict[str, str] = {}
    for item in items:
        rec = item.record
        if rec.label is None or rec.label < 0:
            raise ValueError(f"record {rec.image_id}: needs a 0-based class label")
        name = (names_from_meta and rec.meta.get("class_name")) or default_name(rec.label)
        if names.setdefault(rec.label, name) != name:
            raise ValueError(
                f"label {rec.label} has two class names: {names[rec.label]!r}, {name!r}"
            )
        if rec.split not in ("train", "val", "trainval", "test"):
            raise ValueError(
                f"record {rec.image_id}: split {rec.split!r} is not a zero-shot class split "
                "(train/val/trainval/test)"
            )
        if splits.setdefault(name, rec.split) != rec.split:
            raise ValueError(
                f"class {name!r} has images in split {splits[name]!r} and {rec.split!r}: "
                "zero-shot splits are by class, every image of a class must share one"
            )
    return names, splits


def write_class_splits(reed_dir: Path, names: dict[int, str], splits: dict[str, str]) -> None:
    """Reed's class split files; train/val files only when the records use train/val splits."""
    used = set(splits.values())
    if "trainval" in used and used & {"train", "val"}:
        raise ValueError("records mix 'trainval' with 'train'/'val' class splits")
    ordered = [names[label] for label in sorted(names)]
    per_split = {s: [n for n in ordered if splits[n] == s] for s in ("train", "val", "test")}
    if "trainval" in used:
        per_split["trainval"] = [n for n in ordered if splits[n] == "trainval"]
        del per_split["train"], per_split["val"]
    else:
        per_split["trainval"] = [n for n in ordered if splits[n] in ("train", "val")]
    for split, class_list in per_split.items():
        write_lines(reed_dir / f"{split}classes.txt", class_list)
    write_lines(reed_dir / "allclasses.txt", ordered)


def class_attribute_lines(items: Sequence[WritableImage], labels: Sequence[int]) -> list[str]:
    """CUB's continuous class attribute lines, one per label in ``labels`` order: 100 x the
    class mean of its images' ``meta["attributes"]``. Empty when no record has attributes."""
    have = [item.record.meta.get("attributes") is not None for item in items]
    if not any(have):
        return []
    if not all(have):
        missing = next(item.record.image_id for item, ok in zip(items, have) if not ok)
        raise ValueError(f"record {missing}: has no meta['attributes'] while other records do")
    rows: dict[int, list[np.ndarray]] = {}
    width = len(items[0].record.meta["attributes"])
    for item in items:
        values = np.asarray(item.record.meta["attributes"], dtype=np.float64)
        if values.shape != (width,) or not ((values >= 0) & (values <= 1)).all():
            raise ValueError(
                f"record {item.record.image_id}: meta['attributes'] must be {width} labels in "
                f"[0, 1], got shape {values.shape}"
            )
        rows.setdefault(item.record.label, []).append(values)  # type: ignore[arg-type]
    return [" ".join(f"{v:.6f}" for v in 100.0 * np.mean(rows[label], axis=0)) for label in labels]


@WRITERS.register("cub")
def write_cub(out: Path, items: Sequence[WritableImage], *, captions_per_image: int = 10) -> Path:
    """Write ``CUB_200_2011/`` and ``cvpr2016_cub/`` under ``out``; returns ``out``."""
    out = Path(out)
    cub = out / "CUB_200_2011"
    reed = out / "cvpr2016_cub"
    names, splits = class_names_and_splits(
        items, lambda label: f"{label + 1:03d}.class_{label + 1}"
    )

    images, labels, train_test, boxes = [], [], [], []
    for num, item in enumerate(items, start=1):
        rec = item.record
        class_name = names[rec.label]  # type: ignore[index]
        rel = f"{class_name}/{rec.image_id}.jpg"
        save_jpeg(item.image, cub / "images" / rel)
        images.append(f"{num} {rel}")
        labels.append(f"{num} {rec.label + 1}")  # type: ignore[operator]
        image_split = rec.meta.get("image_split", "train" if num % 2 else "test")
        if image_split not in ("train", "test"):
            raise ValueError(f"record {rec.image_id}: image_split must be 'train' or 'test'")
        train_test.append(f"{num} {1 if image_split == 'train' else 0}")  # 1 = train
        if "bbox" in rec.meta:
            x, y, w, h = (float(v) for v in rec.meta["bbox"])
            boxes.append(f"{num} {x} {y} {w} {h}")
        captions = check_captions(rec, captions_per_image)
        write_lines(reed / "text_c10" / class_name / f"{rec.image_id}.txt", captions)

    write_lines(cub / "images.txt", images)
    write_lines(cub / "classes.txt", [f"{label + 1} {names[label]}" for label in sorted(names)])
    write_lines(cub / "image_class_labels.txt", labels)
    write_lines(cub / "train_test_split.txt", train_test)
    if boxes:
        write_lines(cub / "bounding_boxes.txt", boxes)
    attribute_lines = class_attribute_lines(items, sorted(names))
    if attribute_lines:
        write_lines(cub / CLASS_ATTRIBUTES_FILE, attribute_lines)
    write_class_splits(reed, names, splits)
    return out


@BREAKERS.register("cub")
def break_cub(root: Path) -> Path:
    """Drop the last line of one text_c10 file: 9 captions where Reed's files have 10."""
    target = sorted((Path(root) / "cvpr2016_cub" / "text_c10").rglob("*.txt"))[0]
    lines = target.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    return target
