"""Write records as Visual Genome v1.2 (inverse of ``sources/visual_genome.py``).

Record fields used: ``split`` (train / val / test), ``regions`` (boxes + phrases).
``meta`` keys: ``vg_id`` (int, default index + 1), ``objects`` (optional,
``[{"x","y","w","h","names":[...],"synsets":[...]}]``), ``coco_id`` / ``flickr_id`` (optional).

Images alternate between ``VG_100K/`` and ``VG_100K_2/`` (even / odd index) and each
``image_data.json`` url points at its folder, so both folders and the url lookup are exercised.
``image_data.json``, ``region_descriptions.json`` and ``objects.json`` are aligned index by index.
VG has no official split: the records' splits are written as our split file for seed 0
(``capbench_split_seed0.json``), so a generated dataset keeps its intended split when read with
the default ``split_seed=0``. ``legacy_keys=True`` writes the old ``id`` key in image_data and,
for objects with a single name, the old ``name`` string instead of ``names`` (so one file mixes
both, as real ones do).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capbench.data.sources.visual_genome import (
    IMAGE_DATA,
    IMAGE_FOLDERS,
    OBJECTS,
    REGIONS,
    SPLITS,
    split_file,
    write_split_file,
)
from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_json

URL = "https://cs.stanford.edu/people/rak248/{folder}/{vg_id}.jpg"


def _num(value: float) -> int | float:
    """Whole-number coordinates as ints, like the real files."""
    return int(value) if float(value).is_integer() else float(value)


def _object(obj: dict[str, Any], object_id: int, legacy: bool) -> dict[str, Any]:
    names = list(obj.get("names", []))
    out: dict[str, Any] = {"object_id": object_id}
    out.update({k: _num(obj[k]) for k in ("x", "y", "w", "h")})
    if legacy and len(names) == 1:
        out["name"] = names[0]  # old files: one name, a string
    else:
        out["names"] = names
    out["synsets"] = list(obj.get("synsets", []))
    out["merged_object_ids"] = []
    return out


@WRITERS.register("visual_genome")
def write_visual_genome(
    out: Path, items: Sequence[WritableImage], *, legacy_keys: bool = False
) -> Path:
    """Write images, ``image_data.json``, ``region_descriptions.json``, ``objects.json`` and the seed-0 split."""
    out = Path(out)
    image_data, region_data, object_data = [], [], []
    splits: dict[str, list[int]] = {s: [] for s in SPLITS}
    region_id = object_id = 1
    for index, item in enumerate(items):
        rec = item.record
        if rec.split not in SPLITS:
            raise ValueError(f"record {rec.image_id}: split {rec.split!r} not in {SPLITS}")
        vg_id = int(rec.meta.get("vg_id", index + 1))
        splits[rec.split].append(vg_id)
        folder = IMAGE_FOLDERS[index % 2]
        save_jpeg(item.image, out / folder / f"{vg_id}.jpg")
        url = URL.format(folder=folder, vg_id=vg_id)
        width, height = item.image.size
        image_data.append(
            {
                "width": width,
                "url": url,
                "height": height,
                "id" if legacy_keys else "image_id": vg_id,
                "coco_id": rec.meta.get("coco_id"),
                "flickr_id": rec.meta.get("flickr_id"),
            }
        )
        regions = []
        for r in rec.regions:
            regions.append(
                {
                    "region_id": region_id,
                    "width": _num(r.w),
                    "height": _num(r.h),
                    "image_id": vg_id,
                    "phrase": r.phrase,
                    "y": _num(r.y),
                    "x": _num(r.x),
                }
            )
            region_id += 1
        region_data.append({"regions": regions, "id": vg_id})
        objects = []
        for obj in rec.meta.get("objects", []):
            objects.append(_object(obj, object_id, legacy_keys))
            object_id += 1
        object_data.append({"image_id": vg_id, "objects": objects, "image_url": url})
    write_json(out / IMAGE_DATA, image_data)
    write_json(out / REGIONS, region_data)
    write_json(out / OBJECTS, object_data)
    write_split_file(split_file(out, 0), splits, seed=0)
    return out


@BREAKERS.register("visual_genome")
def break_visual_genome(root: Path) -> Path:
    """Delete the ``phrase`` of the first region in ``region_descriptions.json``."""
    path = Path(root) / REGIONS
    data = json.loads(path.read_text(encoding="utf-8"))
    for entry in data:
        if entry["regions"]:
            del entry["regions"][0]["phrase"]
            write_json(path, data)
            return path
    raise ValueError(f"{path}: no region to break")
