"""Writers: records + images -> a dataset's real on-disk layout.

They are the inverse of the readers in ``capbench.data.sources`` and exist so that the test
fixtures (``capbench.data.fixtures``) and the embedded scenes dataset (``capbench.data.scenes``)
are written by one piece of code per format, in exactly the layout the real files have.

Contract (every writer):
    ``write(name, out_dir, items, **options) -> Path`` where ``items`` is a sequence of
    ``WritableImage(record, image)``. The writer uses ``record.split``, ``record.captions``,
    ``record.regions``, ``record.label``, ``record.labels`` and documented ``record.meta`` keys
    (see each writer module's docstring), writes the images (JPEG, the real names) and the
    annotation files, and returns the dataset root that the matching reader reads unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from capbench.data.records import CaptionedImage
from capbench.registry import Registry


@dataclass
class WritableImage:
    """A record together with the pixels to write for it."""

    record: CaptionedImage
    image: Image.Image


Writer = Callable[..., Path]
WRITERS: Registry[Writer] = Registry("dataset writer")

# For each format, a function that damages a dataset written by its writer in one realistic way
# (a missing key, a caption file with the wrong number of lines, an absent image, ...) and
# returns the path of the file the reader's DatasetFormatError must name.
Breaker = Callable[[Path], Path]
BREAKERS: Registry[Breaker] = Registry("fixture breaker")

_MODULES = (
    "coco", "flickr", "visual_genome", "cub", "flowers", "voc", "graded_retrieval", "imagenet",
)  # fmt: skip
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as err:  # a writer module not written yet
            if err.name != f"{__name__}.{mod}":
                raise
    _loaded = True


def write(name: str, out_dir: str | Path, items: Sequence[WritableImage], **options) -> Path:
    """Write ``items`` as dataset ``name`` under ``out_dir``; returns the dataset root."""
    _load_all()
    return WRITERS.get(name)(Path(out_dir), items, **options)


def names() -> list[str]:
    _load_all()
    return WRITERS.names()


def break_dataset(name: str, root: str | Path) -> Path:
    """Damage the dataset ``name`` written at ``root``; returns the file the error must name."""
    _load_all()
    return BREAKERS.get(name)(Path(root))
