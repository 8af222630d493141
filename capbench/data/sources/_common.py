"""Helpers shared by every reader: validated file access and the missing-image policy.

Readers fail loudly by default (``DatasetFormatError`` naming file, record and expectation);
``allow_missing_images=True`` turns an absent image into a counted warning instead.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage

log = logging.getLogger("capbench.data")


class ReadResult(list[CaptionedImage]):
    """The records a reader returns, plus what it skipped on the way (for ``data check``).

    ``skipped`` counts reasons, e.g. ``{"missing_image": 3, "phantom_row": 5}``.
    """

    def __init__(self, records: list[CaptionedImage] | None = None) -> None:
        super().__init__(records or [])
        self.skipped: Counter[str] = Counter()

    @property
    def missing_images(self) -> int:
        return self.skipped["missing_image"]


def require_file(path: Path, what: str = "file") -> Path:
    """Return ``path`` if it exists, else raise naming it."""
    if not path.is_file():
        raise DatasetFormatError(path, f"missing {what}: expected a file at this path")
    return path


def require_dir(path: Path, what: str = "directory") -> Path:
    if not path.is_dir():
        raise DatasetFormatError(path, f"missing {what}: expected a directory at this path")
    return path


def load_json(path: Path) -> Any:
    """Parse a JSON file, turning decode errors into a DatasetFormatError naming the file."""
    require_file(path, "JSON file")
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, f"not valid JSON ({err.msg} at line {err.lineno})") from None


def require_key(obj: dict, key: str, path: Path, record: str | int | None = None) -> Any:
    """``obj[key]``, or a DatasetFormatError naming the file, the record and the missing key."""
    if not isinstance(obj, dict) or key not in obj:
        raise DatasetFormatError(path, f"missing key {key!r}", record)
    return obj[key]


def read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text file (tolerates CRLF and trailing blank lines)."""
    require_file(path)
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [line.strip() for line in fh if line.strip()]


class FileListing:
    """Which files exist, answered from one directory listing per folder instead of one stat
    per image: a reader checks ~100k images, and listing their folder once is ~20x cheaper.

    Only for folders that do not change during a read (a dataset's image folders).
    """

    def __init__(self) -> None:
        self._folders: dict[str, frozenset[str]] = {}

    def _names(self, folder: str) -> frozenset[str]:
        names = self._folders.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as entries:
                    names = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            self._folders[folder] = names
        return names

    def has(self, folder: str, name: str) -> bool:
        """True if ``folder`` holds a file called ``name``."""
        return name in self._names(folder)

    def is_file(self, path: str | Path) -> bool:
        return self.has(*os.path.split(os.fspath(path)))


def keep_image(
    result: ReadResult,
    image_path: str | Path,
    record_id: str | int,
    annotation_file: Path,
    allow_missing_images: bool,
    listing: FileListing | None = None,
) -> bool:
    """True if the image exists. If absent: raise, or (when allowed) count it and return False.

    ``listing`` answers from folder listings (fast for whole datasets, and on network file
    systems); a file it does not list is checked with a stat, so the answer is the file
    system's even where names are case-insensitive (macOS).
    """
    if listing is not None and listing.is_file(image_path):
        return True
    if os.path.isfile(image_path):
        return True
    if not allow_missing_images:
        raise DatasetFormatError(
            annotation_file,
            f"image listed but absent: expected {image_path} "
            "(pass allow_missing_images=True / --allow-missing-images to skip and count)",
            record_id,
        )
    if result.skipped["missing_image"] == 0:
        log.warning("%s: image %s is missing; skipping missing images", annotation_file, image_path)
    result.skipped["missing_image"] += 1
    return False
