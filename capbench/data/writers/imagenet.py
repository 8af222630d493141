"""Write records as ImageNet-1k (the inverse of ``sources/imagenet.py``).

Record fields used: ``image_id`` (the file stem), ``split`` (train / val), ``meta["wnid"]`` (the
class folder; every wnid needs at least one train image). Train images go to
``train/<wnid>/<image_id>.JPEG``; validation images flat into ``val/`` with Kaggle's
``LOC_val_solution.csv`` (option ``val_layout="flat"``, the default) or into ``val/<wnid>/``
(``"folders"``). Option ``class_names`` ({wnid: names}) writes ``LOC_synset_mapping.txt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from capbench.data.sources.imagenet import SYNSET_MAPPING, VAL_SOLUTION, WNID
from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_lines


@WRITERS.register("imagenet")
def write_imagenet(
    out: Path,
    items: Sequence[WritableImage],
    *,
    val_layout: str = "flat",
    class_names: Mapping[str, str] | None = None,
) -> Path:
    """Write ``train/`` and ``val/`` under ``out``; returns ``out``."""
    if val_layout not in ("flat", "folders"):
        raise ValueError(f"val_layout must be 'flat' or 'folders', got {val_layout!r}")
    out = Path(out)
    solution = ["ImageId,PredictionString"]
    train_wnids: set[str] = set()
    for item in items:
        rec = item.record
        wnid = str(rec.meta.get("wnid", ""))
        if not WNID.match(wnid):
            raise ValueError(f"record {rec.image_id}: meta['wnid'] {wnid!r} is not n########")
        if rec.split == "train":
            train_wnids.add(wnid)
            save_jpeg(item.image, out / "train" / wnid / f"{rec.image_id}.JPEG")
        elif rec.split == "val":
            folder = out / "val" / (wnid if val_layout == "folders" else "")
            save_jpeg(item.image, folder / f"{rec.image_id}.JPEG")
            w, h = item.image.size
            solution.append(f"{rec.image_id},{wnid} 0 0 {w - 1} {h - 1} ")
        else:
            raise ValueError(f"record {rec.image_id}: ImageNet split must be train or val")
    missing = {str(i.record.meta["wnid"]) for i in items} - train_wnids
    if missing:
        raise ValueError(f"classes without a train image (the reader's class list): {missing}")
    if val_layout == "flat":
        write_lines(out / VAL_SOLUTION, solution)
    if class_names:
        write_lines(out / SYNSET_MAPPING, [f"{w} {class_names[w]}" for w in sorted(class_names)])
    return out


@BREAKERS.register("imagenet")
def break_imagenet(root: Path) -> Path:
    """Drop the label line of the last validation image from the solution CSV."""
    path = Path(root) / VAL_SOLUTION
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    return path
