"""Write records as MS-COCO 2014 captions + Karpathy's ``dataset_coco.json`` (inverse of ``sources/coco.py``).

Record fields used: ``split`` (Karpathy split: train / restval / val / test; ``meta["karpathy_split"]``
wins when present, so a Karpathy read writes back unchanged), ``captions``.
``meta`` keys: ``coco_id`` (int, default index + 1); with the ``categories`` option,
``instances``: ``[(category index, x, y, w, h), ...]`` (object boxes in pixels), written as
``annotations/instances_{train,val}2014.json`` (COCO's object annotations; category ids 1-based).

Train images go to ``train2014/COCO_train2014_%012d.jpg`` and ``captions_train2014.json``; the
others (Karpathy's restval/val/test all come from val2014) to ``val2014/``. With
``trailing_whitespace=True`` (default) every other caption is written with the trailing space or
newline real files have, so the reader's stripping is exercised.

The JPEG/JSON/token helpers here are shared with the Flickr and Visual Genome writers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_json

KARPATHY_SPLITS = ("train", "restval", "val", "test")
LICENSES = [
    {
        "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/",
        "id": 1,
        "name": "Attribution-NonCommercial-ShareAlike License",
    }
]


def tokens(caption: str) -> list[str]:
    """Karpathy-style tokens: lowercased words, punctuation stripped."""
    return re.findall(r"[a-z0-9]+", caption.lower())


def karpathy_sentences(captions: Sequence[str], imgid: int, first_sentid: int) -> list[dict]:
    return [
        {"tokens": tokens(c), "raw": c, "imgid": imgid, "sentid": first_sentid + k}
        for k, c in enumerate(captions)
    ]


def _messy(caption: str, k: int, enabled: bool, end: str) -> str:
    return caption + end if enabled and k % 2 == 1 else caption


@WRITERS.register("coco")
def write_coco(
    out: Path,
    items: Sequence[WritableImage],
    *,
    trailing_whitespace: bool = True,
    categories: Sequence[str] | None = None,
) -> Path:
    """Write COCO 2014 images, ``annotations/captions_{train,val}2014.json`` and ``dataset_coco.json``
    (and ``instances_{train,val}2014.json`` when ``categories`` names the object classes)."""
    out = Path(out)
    instances: dict[str, list[dict]] = {"train2014": [], "val2014": []}
    instance_id = 0
    official: dict[str, dict[str, list]] = {
        folder: {"images": [], "annotations": []} for folder in ("train2014", "val2014")
    }
    karpathy: list[dict] = []
    sentid = 1
    for index, item in enumerate(items):
        rec = item.record
        split = rec.meta.get("karpathy_split", rec.split)
        if split not in KARPATHY_SPLITS:
            raise ValueError(f"record {rec.image_id}: split {split!r} not in {KARPATHY_SPLITS}")
        if not rec.captions:
            raise ValueError(f"record {rec.image_id}: COCO images need at least one caption")
        coco_id = int(rec.meta.get("coco_id", index + 1))
        folder = "train2014" if split == "train" else "val2014"
        filename = f"COCO_{folder}_{coco_id:012d}.jpg"
        save_jpeg(item.image, out / folder / filename)
        width, height = item.image.size
        official[folder]["images"].append(
            {
                "license": 1,
                "file_name": filename,
                "coco_url": f"http://images.cocodataset.org/{folder}/{filename}",
                "height": height,
                "width": width,
                "date_captured": "2013-11-14 11:18:45",
                "flickr_url": "",
                "id": coco_id,
            }
        )
        for k, caption in enumerate(rec.captions):
            official[folder]["annotations"].append(
                {
                    "image_id": coco_id,
                    "id": sentid + k,
                    "caption": _messy(caption, k, trailing_whitespace, "\n"),
                }
            )
        for cat, x, y, w, h in rec.meta.get("instances", ()) if categories is not None else ():
            instance_id += 1
            instances[folder].append(
                {
                    "id": instance_id,
                    "image_id": coco_id,
                    "category_id": int(cat) + 1,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w) * float(h),
                    "iscrowd": 0,
                }
            )
        raw = [_messy(c, k, trailing_whitespace, " ") for k, c in enumerate(rec.captions)]
        karpathy.append(
            {
                "filepath": folder,
                "sentids": list(range(sentid, sentid + len(raw))),
                "filename": filename,
                "imgid": index,
                "split": split,
                "sentences": karpathy_sentences(raw, index, sentid),
                "cocoid": coco_id,
            }
        )
        sentid += len(raw)
    for folder, data in official.items():
        info = {"description": f"capbench COCO-format {folder}", "version": "1.0", "year": 2014}
        write_json(
            out / "annotations" / f"captions_{folder}.json",
            {
                "info": info,
                "images": data["images"],
                "licenses": LICENSES,
                "annotations": data["annotations"],
            },
        )
    if categories is not None:
        cats = [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(categories)
        ]
        for folder, data in official.items():
            info = {"description": f"capbench COCO-format {folder} instances", "year": 2014}
            write_json(
                out / "annotations" / f"instances_{folder}.json",
                {
                    "info": info,
                    "images": data["images"],
                    "licenses": LICENSES,
                    "annotations": instances[folder],
                    "categories": cats,
                },
            )
    write_json(out / "dataset_coco.json", {"images": karpathy, "dataset": "coco"})
    return out


@BREAKERS.register("coco")
def break_coco(root: Path) -> Path:
    """Delete the ``caption`` key from one annotation (train file if it has any, else val)."""
    for folder in ("train2014", "val2014"):
        path = Path(root) / "annotations" / f"captions_{folder}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["annotations"]:
            del data["annotations"][0]["caption"]
            write_json(path, data)
            return path
    raise ValueError(f"{root}: no COCO annotation to break")
