"""Evaluation features of images that could not be read. The embedding loops leave such an
image's row NaN (and report the file); an evaluation then either keeps the image, as a row of
zeros (the probes: the split stays whole), or stops, naming the files (the rankings and the
zero-shot scores, whose metrics are defined over every test image)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from capbench.data.records import CaptionedImage


def unreadable_rows(rows: Any) -> np.ndarray:
    """Indices of the rows with a non-finite value (a CPU tensor or an array, ``(N, ...)``)."""
    arr = np.asarray(rows).reshape(len(rows), -1)
    return np.flatnonzero(~np.isfinite(arr).all(axis=1))


def zero_unreadable_rows(rows: np.ndarray, what: str) -> int:
    """Set the unreadable rows of ``rows`` to zeros, in place; how many there were. None
    readable is an error naming ``what``."""
    bad = unreadable_rows(rows)
    if len(bad) == len(rows):
        raise ValueError(f"{what}: no image could be embedded")
    rows[bad] = 0.0
    return len(bad)


def require_every_image(rows: Any, records: Sequence[CaptionedImage], what: str) -> None:
    """A ValueError naming the unreadable test images, if any: ``what`` needs every one."""
    bad = [records[i].image_path for i in unreadable_rows(rows)]
    if bad:
        raise ValueError(
            f"{len(bad)} test image(s) cannot be read, and {what} needs every one: "
            f"{', '.join(bad[:3])}"
        )
