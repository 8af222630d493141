"""A tiny captioned dataset on disk: real photos from skimage/sklearn at mixed sizes and modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from capbench.data.records import CaptionedImage

PHOTOS = {
    "astronaut": skdata.astronaut,
    "camera": skdata.camera,  # grayscale
    "logo": skdata.logo,  # RGBA
    "coffee": skdata.coffee,
    "chelsea": skdata.chelsea,
    "rocket": skdata.rocket,
}

CLASS_CAPTIONS = {
    0: ["a person in a white suit", "a portrait of a person", "a person standing"],
    1: ["a cup of coffee on a table", "a red cup", "coffee in a cup"],
    2: ["a cat lying down", "an orange cat", "a cat with whiskers"],
}


def _save(arr: np.ndarray, path: Path, size: tuple[int, int]) -> None:
    img = Image.fromarray(arr)
    img.thumbnail(size)  # small files keep tests fast; aspect ratios differ per photo
    img.save(path)


def make_dataset(root: Path, corrupt: bool = False) -> dict[str, list[CaptionedImage]]:
    """train: 6 images of 3 classes; val and test: 3 images each. Test captions use words
    ("zebra") that never appear in training. ``corrupt`` adds a truncated JPEG and a garbage
    file to the training split."""
    root.mkdir(parents=True, exist_ok=True)
    names = list(PHOTOS)
    label_of = {"astronaut": 0, "camera": 0, "coffee": 1, "logo": 1, "chelsea": 2, "rocket": 2}
    records: dict[str, list[CaptionedImage]] = {"train": [], "val": [], "test": []}
    sizes = [(64, 48), (40, 60), (56, 56)]
    for split in ("train", "val", "test"):
        chosen = names if split == "train" else names[::2]
        for k, name in enumerate(chosen):
            ext = "png" if name in ("logo", "camera") else "jpg"
            path = root / f"{split}_{name}.{ext}"
            _save(PHOTOS[name](), path, sizes[k % 3])
            label = label_of[name]
            caps = list(CLASS_CAPTIONS[label])
            if split == "test":
                caps = [c + " with a zebra" for c in caps]
            records[split].append(
                CaptionedImage(
                    image_id=f"{split}-{name}",
                    image_path=str(path),
                    split=split,
                    captions=caps,
                    label=label,
                    source="test",
                )
            )
    if corrupt:
        good = (root / "train_astronaut.jpg").read_bytes()
        (root / "cut.jpg").write_bytes(good[: len(good) // 3])
        (root / "junk.jpg").write_bytes(b"\x00garbage, not an image\n" * 20)
        for i, name in enumerate(("cut.jpg", "junk.jpg")):
            records["train"].insert(
                2 * i + 1,
                CaptionedImage(
                    image_id=f"bad-{i}",
                    image_path=str(root / name),
                    split="train",
                    captions=["a broken file"],
                    label=i,
                ),
            )
    return records


@pytest.fixture
def tiny_records(tmp_path) -> dict[str, list[CaptionedImage]]:
    torch.set_num_threads(1)
    return make_dataset(tmp_path / "tiny")


@pytest.fixture
def corrupt_records(tmp_path) -> dict[str, list[CaptionedImage]]:
    torch.set_num_threads(1)
    return make_dataset(tmp_path / "corrupt", corrupt=True)
