"""Tiny datasets in every registered on-disk format, built from real photographs.

The pixels are the photographs that installed packages ship (scikit-image's ``skimage.data``,
scikit-learn's sample images: CC0 / public domain / CC-BY, see formats.md §2), so readers and
image decoding are tested on real JPEG statistics, including a grayscale source (``camera``,
``coins``, ``moon``) and an RGBA source (``logo``). The captions, region phrases, classes and
labels are ours, written by hand for these images. Each dataset is written by the format's
registered writer, so the fixtures have exactly the layout the readers read.

``write_fixture(name, out)`` works for every name in ``capbench.data.writers.names()``;
``broken=True`` then damages it with the format's registered breaker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from capbench.data import writers
from capbench.data.records import CaptionedImage, Region
from capbench.data.sources.voc import VOC_CLASSES
from capbench.data.writers import WritableImage

MAX_SIDE = 160  # small files: every fixture writes in well under a second


@dataclass(frozen=True)
class Photo:
    """One bundled photograph and the annotations we wrote for it."""

    key: str  # loader: "skimage:<name>" or "sklearn:<file name>"
    captions: tuple[str, ...]  # five sentence captions (COCO / Flickr style)
    details: tuple[str, ...]  # five more, so text_c10 files get ten
    regions: tuple[tuple[float, float, float, float, str], ...]  # x, y, w, h as fractions
    cls: int  # fine-grained class (CUB / Flowers style)
    voc: tuple[str, ...] = ()  # VOC classes present
    voc_difficult: tuple[str, ...] = ()  # VOC classes present only as difficult instances
    extra: dict[str, Any] = field(default_factory=dict)


CLASSES = ("001.Space_scene", "002.Still_life", "003.Living_thing", "004.Outdoor_view")
# Reed-style zero-shot class split of the four classes.
CLASS_SPLIT = ("train", "train", "val", "test")

PHOTOS: tuple[Photo, ...] = (
    Photo(
        "skimage:astronaut",
        (
            "a woman in an orange space suit poses in front of a flag",
            "an astronaut smiles for an official portrait",
            "a smiling astronaut holds a helmet next to an american flag",
            "portrait of a woman wearing an orange flight suit",
            "a space shuttle model sits behind a woman in uniform",
        ),
        (
            "the suit is bright orange with white patches",
            "she has short dark curly hair",
            "a small model of a shuttle is on the left",
            "the background shows stars and stripes",
            "she holds a white helmet in her arm",
        ),
        (
            (0.3, 0.0, 0.5, 0.6, "a smiling woman"),
            (0.0, 0.0, 0.3, 0.5, "a model space shuttle"),
            (0.55, 0.3, 0.45, 0.7, "a white helmet"),
        ),
        0,
        voc=("person",),
    ),
    Photo(
        "skimage:rocket",
        (
            "a rocket stands on the launch pad under a blue sky",
            "a white rocket is prepared for launch",
            "a launch tower next to a tall rocket",
            "a rocket on a pad with its service structure",
            "a tall rocket waits on a clear day",
        ),
        (
            "the rocket is white with a dark band",
            "a grey steel tower stands beside it",
            "the sky is a deep clear blue",
            "there are no clouds in the picture",
            "the ground is flat and sandy",
        ),
        ((0.4, 0.05, 0.2, 0.9, "a white rocket"), (0.1, 0.1, 0.3, 0.85, "a steel launch tower")),
        0,
    ),
    Photo(
        "skimage:hubble_deep_field",
        (
            "thousands of distant galaxies on a black background",
            "a deep field image of space full of galaxies",
            "small spiral and elliptical galaxies scattered across the dark sky",
            "a telescope view of many faint galaxies",
            "colourful specks of light fill the black sky",
        ),
        (
            "most galaxies are tiny and faint",
            "a few bright spirals stand out",
            "the background is almost black",
            "some galaxies look red and others blue",
            "a bright star shows diffraction spikes",
        ),
        (
            (0.2, 0.2, 0.3, 0.3, "a bright spiral galaxy"),
            (0.6, 0.5, 0.2, 0.2, "a faint red galaxy"),
        ),
        0,
    ),
    Photo(
        "skimage:coffee",
        (
            "a cup of coffee on a saucer with a spoon",
            "a cappuccino with foam art in a white cup",
            "a white coffee cup sits on a matching saucer",
            "coffee with a leaf pattern in the milk foam",
            "a spoon rests on a saucer beside a cup of coffee",
        ),
        (
            "the foam has a brown and white pattern",
            "the cup is white porcelain",
            "a metal spoon lies on the saucer",
            "the table surface is dark red",
            "the picture is taken from above",
        ),
        ((0.25, 0.1, 0.5, 0.8, "a white coffee cup"), (0.7, 0.5, 0.25, 0.3, "a metal spoon")),
        1,
        voc=("diningtable",),
    ),
    Photo(
        "skimage:coins",
        (
            "old coins laid out in rows on a dark cloth",
            "a black and white photo of many round coins",
            "rows of ancient coins on display",
            "several worn coins arranged in a grid",
            "a grayscale picture of a coin collection",
        ),
        (
            "the coins are of different sizes",
            "each coin shows a worn stamped face",
            "the background is a dark grey",
            "there are four rows of coins",
            "the picture has no colour",
        ),
        ((0.05, 0.05, 0.2, 0.25, "a small worn coin"), (0.4, 0.4, 0.2, 0.25, "a large old coin")),
        1,
    ),
    Photo(
        "skimage:logo",
        (
            "a logo with a snake drawn in a stylised image",
            "the scikit-image logo on a transparent background",
            "a green and orange snake logo next to some text",
            "a software logo with a small drawing",
            "a flat graphic logo with bright colours",
        ),
        (
            "the snake is coloured green and orange",
            "the background is transparent",
            "the drawing is small and simple",
            "the shapes have clean edges",
            "there is white space around the logo",
        ),
        ((0.1, 0.1, 0.8, 0.8, "a stylised snake logo"),),
        1,
    ),
    Photo(
        "skimage:chelsea",
        (
            "a ginger cat looks to the side",
            "a close up of a tabby cat with green eyes",
            "an orange cat sitting on a patterned floor",
            "a cat's face with long white whiskers",
            "a striped cat looks away from the camera",
        ),
        (
            "the cat has orange and white stripes",
            "its eyes are green",
            "the whiskers are long and white",
            "the ears point upward",
            "the background is out of focus",
        ),
        ((0.25, 0.05, 0.6, 0.9, "a ginger cat"), (0.4, 0.3, 0.3, 0.2, "green cat eyes")),
        2,
        voc=("cat",),
    ),
    Photo(
        "sklearn:flower.jpg",
        (
            "a pink flower with a yellow centre",
            "a close up of a single flower in bloom",
            "a pink daisy like flower against green leaves",
            "a bee sized view of a flower's petals",
            "a blooming flower photographed up close",
        ),
        (
            "the petals are pink and narrow",
            "the centre is yellow and round",
            "green leaves fill the background",
            "the flower faces the camera",
            "the light is soft and even",
        ),
        ((0.2, 0.1, 0.6, 0.8, "a pink flower"), (0.4, 0.35, 0.2, 0.25, "a yellow flower centre")),
        2,
        voc_difficult=("pottedplant",),
    ),
    Photo(
        "skimage:retina",
        (
            "a photograph of the back of a human eye",
            "the retina with branching blood vessels",
            "a medical image of a retina showing the optic disc",
            "red blood vessels spread across an orange retina",
            "a fundus photograph on a black background",
        ),
        (
            "the optic disc is a bright yellow spot",
            "dark red vessels branch from the disc",
            "the retina looks orange",
            "the image is round on a black frame",
            "the centre of the image is darker",
        ),
        ((0.55, 0.35, 0.2, 0.25, "a bright optic disc"), (0.1, 0.1, 0.8, 0.8, "an orange retina")),
        2,
    ),
    Photo(
        "skimage:camera",
        (
            "a man with a camera on a tripod stands in a field",
            "a black and white photo of a cameraman",
            "a photographer in a dark coat looks through his camera",
            "a man operates a camera outdoors",
            "a grayscale picture of a man and his tripod",
        ),
        (
            "the man wears a dark coat",
            "the camera sits on a tall tripod",
            "buildings are visible far behind him",
            "the grass is light grey",
            "the picture has no colour",
        ),
        (
            (0.2, 0.05, 0.5, 0.9, "a man in a dark coat"),
            (0.15, 0.2, 0.3, 0.7, "a camera on a tripod"),
        ),
        3,
        voc=("person",),
    ),
    Photo(
        "skimage:moon",
        (
            "the surface of the moon covered in craters",
            "a grayscale photo of lunar craters",
            "a close view of the moon's rough surface",
            "craters of many sizes on the moon",
            "a black and white image of a cratered landscape",
        ),
        (
            "the craters are round and shallow",
            "the surface is grey and dusty",
            "light comes from one side",
            "there is no sky in the picture",
            "the picture has no colour",
        ),
        ((0.3, 0.3, 0.3, 0.3, "a large round crater"),),
        3,
    ),
    Photo(
        "sklearn:china.jpg",
        (
            "a chinese temple with a curved roof among trees",
            "a pagoda style building under a blue sky",
            "a traditional temple surrounded by green trees",
            "a red and white building with a tiled roof",
            "an old temple seen from below on a sunny day",
        ),
        (
            "the roof is curved and dark",
            "the walls are red and white",
            "green trees surround the building",
            "the sky is blue with a few clouds",
            "the temple stands on a hill",
        ),
        ((0.2, 0.1, 0.6, 0.6, "a temple with a curved roof"), (0.0, 0.6, 1.0, 0.4, "green trees")),
        3,
    ),
)

# VOC image split per photo: every split gets a labelled image (and val a difficult one).
VOC_SPLIT = (
    "train",
    "train",
    "train",
    "train",
    "val",
    "val",
    "test",
    "val",
    "test",
    "val",
    "test",
    "test",
)

# Graded relevance (0..3) for the graded_retrieval fixture: our judgment of scene similarity.
QUERIES = (0, 6, 9)  # astronaut, chelsea, camera
RELEVANCE = {
    0: {1: 2, 2: 2, 3: 0, 4: 0, 10: 1, 11: 0},
    6: {7: 2, 8: 1, 3: 0, 4: 0, 5: 0},
    9: {10: 1, 11: 2, 1: 1, 4: 0, 2: 0},
}


@cache
def _load(key: str) -> Image.Image:
    """The photograph, shrunk to ``MAX_SIDE``; the source mode (L, RGB, RGBA) is kept."""
    lib, name = key.split(":")
    if lib == "skimage":
        try:
            import skimage.data
        except ImportError as err:  # a dev dependency
            raise RuntimeError("fixtures need scikit-image (pip install 'capbench[dev]')") from err
        image = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
    else:
        from sklearn.datasets import load_sample_image

        image = Image.fromarray(load_sample_image(name))
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _record(i: int, photo: Photo, image: Image.Image, image_id: str, split: str) -> CaptionedImage:
    w, h = image.size
    regions = [
        Region(x * w, y * h, rw * w, rh * h, phrase) for x, y, rw, rh, phrase in photo.regions
    ]
    return CaptionedImage(
        image_id=image_id,
        image_path="",
        split=split,
        captions=list(photo.captions),
        regions=regions,
        label=photo.cls,
        labels=[VOC_CLASSES.index(c) for c in photo.voc],
        meta={"class_name": CLASSES[photo.cls], "fixture_source": photo.key},
    )


def _items(
    image_id: Callable[[int, Photo], str], split: Callable[[int, Photo], str]
) -> list[WritableImage]:
    out = []
    for i, photo in enumerate(PHOTOS):
        image = _load(photo.key)
        out.append(
            WritableImage(_record(i, photo, image, image_id(i, photo), split(i, photo)), image)
        )
    return out


def _image_split(i: int, photo: Photo) -> str:
    return ("train", "val", "test")[i % 3]


def _cub() -> tuple[list[WritableImage], dict[str, Any]]:
    items = _items(
        lambda i, p: f"{CLASSES[p.cls][4:]}_{i + 1:04d}_{p.cls + 1}",
        lambda i, p: CLASS_SPLIT[p.cls],
    )
    for i, item in enumerate(items):
        rec = item.record
        rec.captions = rec.captions + list(PHOTOS[i].details)
        rec.meta["image_split"] = "train" if i % 2 == 0 else "test"
        r = rec.regions[0]
        rec.meta["bbox"] = [round(r.x), round(r.y), round(r.w), round(r.h)]
    return items, {}


def _flowers() -> tuple[list[WritableImage], dict[str, Any]]:
    items, _ = _cub()
    for i, item in enumerate(items):
        item.record.image_id = f"image_{i + 1:05d}"
        item.record.meta = {"image_split": ("trn", "val", "tst")[i % 3]}
    return items, {}


def _voc() -> tuple[list[WritableImage], dict[str, Any]]:
    items = _items(lambda i, p: f"{i + 1:06d}", lambda i, p: VOC_SPLIT[i])
    for item, photo in zip(items, PHOTOS):
        item.record.meta = {"difficult": [VOC_CLASSES.index(c) for c in photo.voc_difficult]}
    return items, {"classes": list(VOC_CLASSES)}


def _graded() -> tuple[list[WritableImage], dict[str, Any]]:
    items = _items(
        lambda i, p: f"2008_{i + 1:06d}", lambda i, p: "query" if i in QUERIES else "reference"
    )
    ids = [item.record.image_id for item in items]
    relevance = {ids[q]: {ids[r]: g for r, g in judged.items()} for q, judged in RELEVANCE.items()}
    return items, {"queries": [ids[q] for q in QUERIES], "relevance": relevance}


def _generic() -> tuple[list[WritableImage], dict[str, Any]]:
    """Sentence captions, regions, labels and train/val/test splits: for any other format,
    whose writer takes what it needs from these fields."""
    return _items(lambda i, p: f"{i + 1}", _image_split), {}


def _coco() -> tuple[list[WritableImage], dict[str, Any]]:
    items = _items(
        lambda i, p: f"{391895 + 17 * i}", lambda i, p: ("train", "restval", "val", "test")[i % 4]
    )
    for item in items:
        item.record.meta["coco_id"] = int(item.record.image_id)
    return items, {}


def _flickr8k() -> tuple[list[WritableImage], dict[str, Any]]:
    # real Flickr8k stems look like 1000268201_693b08cb0e
    return _items(
        lambda i, p: f"{1000268201 + 7919 * i}_{(i * 2654435761) % 16**10:010x}", _image_split
    ), {}


def _flickr30k() -> tuple[list[WritableImage], dict[str, Any]]:
    return _items(lambda i, p: f"{1000092795 + 104729 * i}", _image_split), {}


def _visual_genome() -> tuple[list[WritableImage], dict[str, Any]]:
    items = _items(lambda i, p: f"{i + 1}", _image_split)
    for item in items:
        # one object per region, named by the phrase's last word ("a white rocket" -> rocket)
        item.record.meta["objects"] = [
            {"x": r.x, "y": r.y, "w": r.w, "h": r.h, "names": [r.phrase.split()[-1]], "synsets": []}
            for r in item.record.regions
        ]
    return items, {}


def _imagenet() -> tuple[list[WritableImage], dict[str, Any]]:
    # one made-up wnid per fixture class; train / val alternate so every class has a train image
    wnids = [f"n{9000001 + 17 * c:08d}" for c in range(len(CLASSES))]
    items = _items(
        lambda i, p: f"ILSVRC2012_val_{i + 1:08d}" if i % 3 == 2 else f"{wnids[p.cls]}_{i + 1}",
        lambda i, p: "val" if i % 3 == 2 else "train",
    )
    for item in items:
        item.record.meta["wnid"] = wnids[item.record.label]
    return items, {"class_names": dict(zip(wnids, CLASSES, strict=True))}


_SPECS: dict[str, Callable[[], tuple[list[WritableImage], dict[str, Any]]]] = {
    "cub": _cub,
    "flowers": _flowers,
    "voc2007": _voc,
    "graded_retrieval": _graded,
    "coco": _coco,
    "flickr8k": _flickr8k,
    "flickr30k": _flickr30k,
    "visual_genome": _visual_genome,
    "imagenet": _imagenet,
}


def _keep_png(root: Path) -> None:
    """Store the RGBA logo of the graded_retrieval fixture as its original PNG (alpha kept),
    so one fixture exercises a PNG / RGBA decode path in the image loader."""
    path = root / "benchmark.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    logo = next(i for i, p in enumerate(PHOTOS) if p.key == "skimage:logo")
    entry = doc["images"][logo]
    (root / entry["file"]).unlink()
    entry["file"] = f"images/{entry['id']}.png"
    _load(PHOTOS[logo].key).save(root / entry["file"])
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def fixture_names() -> list[str]:
    """Every format that has a registered writer (so a new format gets a fixture at once)."""
    return writers.names()


def write_fixture(name: str, out: str | Path, broken: bool = False) -> Path:
    """Write the fixture for format ``name`` under ``out``; returns the root its reader reads.

    ``broken=True`` also applies the format's breaker (one realistic defect).
    """
    root, _ = _write(name, Path(out), broken)
    return root


def write_broken_fixture(name: str, out: str | Path) -> tuple[Path, Path]:
    """The broken fixture: (dataset root, the file the reader's error must name)."""
    root, bad = _write(name, Path(out), True)
    assert bad is not None
    return root, bad


def _write(name: str, out: Path, broken: bool) -> tuple[Path, Path | None]:
    if name not in fixture_names():
        raise KeyError(f"no writer for {name!r}; fixtures exist for {', '.join(fixture_names())}")
    items, options = _SPECS.get(name, _generic)()
    root = writers.write(name, out, items, **options)
    if name == "graded_retrieval":
        _keep_png(root)
    bad = writers.break_dataset(name, root) if broken else None
    return root, bad
