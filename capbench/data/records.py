"""The one record schema every reader returns and every DataModule view consumes.

Keeping a single schema is what lets five methods share one data layer: a reader knows its
on-disk format and nothing about models; a view knows records and nothing about formats.
"""

from __future__ import annotations

from collections.abc import Callable
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


class LazyRegions:
    """A ``list[Region]`` not built yet: a reader passes one as ``CaptionedImage(regions=...)``.

    Visual Genome has ~5M regions; building them costs more than the rest of a cached read
    together, and a read that only wants images (feature extraction, image-only views) never
    looks at them. The record builds its list on the first access of ``record.regions`` and
    keeps it, so to every caller ``regions`` is a plain list (see :class:`_RegionsField`).
    """

    __slots__ = ("build",)

    def __init__(self, build: Callable[[], list[Region]]) -> None:
        self.build = build


class _RegionsField:
    """``CaptionedImage.regions``: stores a list, or a :class:`LazyRegions` it builds on first
    access. Equality, ``repr``, ``asdict``, ``replace``, copies and pickles all go through the
    attribute, so they see (and pickle) the built list, never the builder."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, record: Any, owner: type | None = None) -> Any:
        if record is None:
            return ()  # the dataclass default; ``__set__`` turns it into a fresh list
        value = record.__dict__[self.name]
        if type(value) is LazyRegions:
            value = record.__dict__[self.name] = value.build()
        return value

    def __set__(self, record: Any, value: Any) -> None:
        record.__dict__[self.name] = [] if isinstance(value, tuple) and not value else value


@dataclass
class CaptionedImage:
    """One image with everything capbench knows about it.

    ``captions`` are sentence-level captions; ``regions`` region phrases with boxes (may be
    empty; a reader may pass :class:`LazyRegions` to build them on first access); ``label`` a
    single class (CUB/Flowers), ``labels`` multi-label class indices (VOC); ``source`` the
    reader name; ``meta`` format-specific extras (original ids, image-level
    splits of zero-shot datasets, difficult flags, ...).
    """

    image_id: str
    image_path: str
    split: str
    captions: list[str] = field(default_factory=list)
    regions: list[Region] = _RegionsField()  # type: ignore[assignment]  # a list; see LazyRegions
    label: int | None = None
    labels: list[int] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the built regions, not a builder that holds every region of the dataset."""
        state = dict(self.__dict__)
        state["regions"] = self.regions
        return state
