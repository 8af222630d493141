"""Write records as Flickr8k / Flickr30k (inverse of ``sources/flickr.py``).

Record fields used: ``image_id`` (file stem: the image is ``<image_id>.jpg``), ``split``
(train / val / test), ``captions`` (exactly 5). Both the Karpathy JSON and the original files are
written, so either reader mode can be tested on one folder:

* flickr8k: ``dataset_flickr8k.json``, ``Flickr8k.token.txt``, ``Flickr_8k.{train,dev,test}Images.txt``
  (our ``val`` is the original ``dev``), images in the real, misspelled ``Flicker8k_Dataset/``.
* flickr30k: ``dataset_flickr30k.json``, ``results_20130124.token``, images in ``flickr30k-images/``
  (``image_dir="flickr30k_images"`` writes the other folder name some copies use).

``phantom=True`` (default for flickr8k) adds the real token file's five rows for the nonexistent
``2258277193_586949ec62.jpg.1`` after the first image's captions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg, write_json
from capbench.data.writers.coco import karpathy_sentences

CAPTIONS_PER_IMAGE = 5
SPLITS = ("train", "val", "test")
PHANTOM_IMAGE = "2258277193_586949ec62.jpg.1"
PHANTOM_CAPTIONS = (
    "A man in a white shirt stands next to a dog .",
    "A man and a dog .",
    "A dog stands near a man .",
    "A person is standing with a dog outside .",
    "A man is with his dog .",
)
FLICKR8K_SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


def _checked(items: Sequence[WritableImage]) -> None:
    for item in items:
        rec = item.record
        if rec.split not in SPLITS:
            raise ValueError(f"record {rec.image_id}: split {rec.split!r} not in {SPLITS}")
        if len(rec.captions) != CAPTIONS_PER_IMAGE or any("\n" in c for c in rec.captions):
            raise ValueError(
                f"record {rec.image_id}: Flickr needs exactly {CAPTIONS_PER_IMAGE} one-line "
                f"captions, got {len(rec.captions)}"
            )


def _write_common(
    out: Path,
    items: Sequence[WritableImage],
    name: str,
    image_dir: str,
    token_file: str,
    phantom: bool,
) -> None:
    """Images, Karpathy's JSON and the ``<image>#n\\t<caption>`` token file."""
    _checked(items)
    entries, lines = [], []
    for index, item in enumerate(items):
        rec = item.record
        filename = f"{rec.image_id}.jpg"
        save_jpeg(item.image, out / image_dir / filename)
        first = index * CAPTIONS_PER_IMAGE
        entries.append(
            {
                "sentids": list(range(first, first + CAPTIONS_PER_IMAGE)),
                "imgid": index,
                "sentences": karpathy_sentences(rec.captions, index, first),
                "split": rec.split,
                "filename": filename,
            }
        )
        lines += [f"{filename}#{k}\t{c}" for k, c in enumerate(rec.captions)]
        if phantom and index == 0:
            lines += [f"{PHANTOM_IMAGE}#{k}\t{c}" for k, c in enumerate(PHANTOM_CAPTIONS)]
    write_json(out / f"dataset_{name}.json", {"images": entries, "dataset": name})
    (out / token_file).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@WRITERS.register("flickr8k")
def write_flickr8k(out: Path, items: Sequence[WritableImage], *, phantom: bool = True) -> Path:
    """Write Flickr8k: Karpathy JSON, token file (with phantom rows), split lists, images."""
    out = Path(out)
    _write_common(out, items, "flickr8k", "Flicker8k_Dataset", "Flickr8k.token.txt", phantom)
    for split, fname in FLICKR8K_SPLIT_FILES.items():
        names = [f"{i.record.image_id}.jpg" for i in items if i.record.split == split]
        (out / fname).write_text("".join(n + "\n" for n in names), encoding="utf-8")
    return out


@WRITERS.register("flickr30k")
def write_flickr30k(
    out: Path,
    items: Sequence[WritableImage],
    *,
    phantom: bool = False,
    image_dir: str = "flickr30k-images",
) -> Path:
    """Write Flickr30k: Karpathy JSON, ``results_20130124.token``, images."""
    if image_dir not in ("flickr30k-images", "flickr30k_images"):
        raise ValueError(
            f"image_dir must be flickr30k-images or flickr30k_images, got {image_dir!r}"
        )
    out = Path(out)
    _write_common(out, items, "flickr30k", image_dir, "results_20130124.token", phantom)
    return out


@BREAKERS.register("flickr8k")
def break_flickr8k(root: Path) -> Path:
    """Drop the ``sentences`` key of one image in ``dataset_flickr8k.json``."""
    path = Path(root) / "dataset_flickr8k.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["images"][0]["sentences"]
    write_json(path, data)
    return path


@BREAKERS.register("flickr30k")
def break_flickr30k(root: Path) -> Path:
    """Delete an image that ``dataset_flickr30k.json`` lists."""
    path = Path(root) / "dataset_flickr30k.json"
    filename = json.loads(path.read_text(encoding="utf-8"))["images"][0]["filename"]
    for folder in ("flickr30k-images", "flickr30k_images"):
        (Path(root) / folder / filename).unlink(missing_ok=True)
    return path
