"""Readers, one module per on-disk format, registered by name.

Every reader is a function ``(root: Path, split: str | None = None, **options) -> list[CaptionedImage]``
registered with ``@READERS.register("<name>")``. Importing this package imports every reader module
so the registry is complete.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from capbench.data.records import CaptionedImage
from capbench.registry import Registry

Reader = Callable[..., list[CaptionedImage]]
READERS: Registry[Reader] = Registry("dataset reader")

# One module per format; each registers itself on import.
_MODULES = (
    "coco",
    "flickr",
    "visual_genome",
    "cub",
    "flowers",
    "voc",
    "graded_retrieval",
    "imagenet",
)
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as err:  # a reader module not written yet
            if err.name != f"{__name__}.{mod}":
                raise
    _loaded = True


def names() -> list[str]:
    """Names of all registered dataset readers."""
    _load_all()
    return READERS.names()


def read(name: str, root: str | Path, split: str | None = None, **options) -> list[CaptionedImage]:
    """Read dataset ``name`` stored at ``root`` (its real on-disk layout) into records."""
    _load_all()
    return READERS.get(name)(Path(root), split, **options)
