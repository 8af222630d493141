"""The one record schema every reader returns and every DataModule view consumes.

Keeping a single schema is what lets five methods share one data layer: a reader knows its
on-disk format and nothing about models; a view knows records and nothing about formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Region(NamedTuple):
    """A Visual Genome style region: a box in pixels (top-left x, y, width, height) and its phrase.

    A NamedTuple rather than a frozen dataclass: Visual Genome has ~5M regions and building them
    is the dominant cost of a cached read (a frozen dataclass's ``__init__`` is ~2x slower).
    """

    x: float
    y: float
    w: float
    h: float
    phrase: str


@dataclass
class CaptionedImage:
    """One image with everything capbench knows about it.

    ``captions`` are sentence-level captions; ``regions`` region phrases with boxes (may be
    empty); ``label`` a single class (CUB/Flowers), ``labels`` multi-label class indices (VOC);
    ``source`` the reader name; ``meta`` format-specific extras (original ids, image-level
    splits of zero-shot datasets, difficult flags, ...).
    """

    image_id: str
    image_path: str
    split: str
    captions: list[str] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    label: int | None = None
    labels: list[int] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
