"""Write records as PASCAL VOC 2007 (the inverse of ``sources/voc.py``).

Option ``classes`` (required): the class names, in index order. Real VOC files store no class
order (the reader assumes the canonical 20); for any other list the writer adds
``VOC2007/capbench_classes.txt`` (ours, one name per line) so indices survive the round trip. Record fields used:
``image_id`` (the file stem, e.g. ``000005``), ``labels`` (present class indices), ``split``
(train/val/test, or trainval/test), ``meta["difficult"]`` (difficult-only class indices,
optional). Writes ``VOCdevkit/VOC2007/JPEGImages``, ``ImageSets/Main/{split}.txt``,
``<cls>_{split}.txt`` printed ``%s %2d`` like the originals (positives get two spaces) and a
minimal ``Annotations/<id>.xml`` per image (one whole-image box per present/difficult class).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from capbench.data.sources.voc import CLASS_ORDER_FILE, VOC_CLASSES
from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_lines


def _annotation_xml(image_id: str, size: tuple[int, int], objects: list[tuple[str, int]]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2007"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size_el = ET.SubElement(root, "size")
    for tag, value in zip(("width", "height", "depth"), (*size, 3)):
        ET.SubElement(size_el, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for name, difficult in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(difficult)
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (1, 1, *size)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8")


def _split_members(items: Sequence[WritableImage]) -> dict[str, list[int]]:
    """{split: item indices}, with trainval = train + val when the records use train/val."""
    members: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        split = item.record.split
        if split not in ("train", "val", "trainval", "test"):
            raise ValueError(
                f"record {item.record.image_id}: VOC split must be train/val/trainval/test"
            )
        members.setdefault(split, []).append(i)
    if "trainval" in members and ("train" in members or "val" in members):
        raise ValueError("records mix 'trainval' with 'train'/'val' splits")
    if "trainval" not in members and ("train" in members or "val" in members):
        members.setdefault("train", [])
        members.setdefault("val", [])
        members["trainval"] = sorted(members["train"] + members["val"])
    return members


@WRITERS.register("voc2007")
def write_voc2007(out: Path, items: Sequence[WritableImage], *, classes: Sequence[str]) -> Path:
    """Write ``VOCdevkit/VOC2007`` under ``out``; returns ``out``."""
    out = Path(out)
    voc = out / "VOCdevkit" / "VOC2007"
    main = voc / "ImageSets" / "Main"
    classes = list(classes)
    if len(set(classes)) != len(classes) or any(
        not c or "/" in c or c.strip() != c for c in classes
    ):
        raise ValueError(f"class names must be unique, non-empty and without '/': {classes}")
    if classes != list(VOC_CLASSES):
        # VOC files store no class order; ours keeps it so label indices survive the round trip
        write_lines(voc / CLASS_ORDER_FILE, classes)
    values: list[list[int]] = []  # per item, per class: 1 / -1 / 0
    for item in items:
        rec = item.record
        if not rec.image_id or any(ch.isspace() for ch in rec.image_id):
            raise ValueError(f"VOC image ids cannot be empty or contain spaces: {rec.image_id!r}")
        row = [-1] * len(classes)
        for idx in rec.meta.get("difficult", []):
            row[idx] = 0
        for idx in rec.labels:
            if not 0 <= idx < len(classes):
                raise ValueError(
                    f"record {rec.image_id}: label {idx} outside 0..{len(classes) - 1}"
                )
            row[idx] = 1
        values.append(row)
        save_jpeg(item.image, voc / "JPEGImages" / f"{rec.image_id}.jpg")
        objects = [(classes[c], 0 if v == 1 else 1) for c, v in enumerate(row) if v != -1]
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{rec.image_id}.xml").write_bytes(
            _annotation_xml(rec.image_id, item.image.size, objects)
        )
    for split, members in _split_members(items).items():
        write_lines(main / f"{split}.txt", [items[i].record.image_id for i in members])
        for c, cls in enumerate(classes):
            lines = ["%s %2d" % (items[i].record.image_id, values[i][c]) for i in members]  # noqa: UP031
            write_lines(main / f"{cls}_{split}.txt", lines)
    return out


@BREAKERS.register("voc2007")
def break_voc2007(root: Path) -> Path:
    """Cut the label off the first line of one class file (``000001`` instead of ``000001  1``)."""
    target = sorted((Path(root) / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main").glob("*_*.txt"))[
        0
    ]
    lines = target.read_text().splitlines()
    lines[0] = lines[0].split()[0]
    target.write_text("\n".join(lines) + "\n")
    return target
